/**
 * Session setup (PQXDH §3.3/§3.4): the happy paths, and every attack on a bundle or an initial
 * message failing with its exact error, leaving the responder's prekeys untouched.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  IdentityPublicKey,
  X25519PublicKey,
  XWING_CIPHERTEXT_BYTES,
  generateIdentityKeyPair,
  kemEncapsulate,
  sign,
} from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { signedPrekeySignedData, kemPrekeySignedData, type SessionPrekeyBundle } from './prekeys.js';
import { Session } from './session.js';
import { SessionMessages } from './session-errors.js';
import { SessionMessageType, decodeSessionMessage } from './session-message.js';
import {
  type Party,
  claim,
  expectProtocolError,
  party,
  ready,
  rewriteHeader,
  text,
  utf8,
} from './session-kit.test.js';

beforeAll(async () => {
  await ready();
});

/** Low-order X25519 points (RFC 7748 §6.1 refuses the all-zero shared secret they force). */
const LOW_ORDER_X25519 = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];
/** The Ed25519 neutral element (order 1): encoded y = 1. */
const LOW_ORDER_ED25519 = Uint8Array.of(1, ...new Uint8Array(31));

async function roundTrip(alice: Party, bob: Party, bundle: SessionPrekeyBundle) {
  const toBob = Session.initiate(alice.identity, bundle, bob.publicKey);
  const first = await toBob.encrypt(utf8('hello Bob'));
  const { session: toAlice, plaintext } = await Session.accept(bob.prekeys, first, alice.publicKey);
  expect(text(plaintext)).toBe('hello Bob');
  const reply = await toAlice.encrypt(utf8('hello Alice'));
  expect(decodeSessionMessage(reply).type).toBe(SessionMessageType.Ratchet);
  expect(text((await toBob.decrypt(reply, alice.prekeys)).plaintext)).toBe('hello Alice');
  return { toBob, toAlice };
}

describe('session setup: happy paths', () => {
  it('sets up with a one-time prekey (DH4), uses it up, and the ratchet flows both ways', async () => {
    const alice = party();
    const bob = party(3);
    const bundle = claim(bob);
    expect(bundle.oneTimePrekey).toBeDefined();
    const { toBob, toAlice } = await roundTrip(alice, bob, bundle);
    expect(bob.prekeys.oneTimePrekeyCount).toBe(2);
    expect(bob.prekeys.oneTimePrekeyKeyPair(bundle.oneTimePrekey!.id)).toBeUndefined();
    expect(toBob.awaitingReply).toBe(false);
    expect(toBob.setupId).toBe(toAlice.setupId);
    for (let i = 0; i < 3; i++) {
      const m = await toBob.encrypt(utf8(`a${i}`));
      expect(decodeSessionMessage(m).type).toBe(SessionMessageType.Ratchet);
      expect(text((await toAlice.decrypt(m, bob.prekeys)).plaintext)).toBe(`a${i}`);
      expect(text((await toBob.decrypt(await toAlice.encrypt(utf8(`b${i}`)), alice.prekeys)).plaintext)).toBe(
        `b${i}`,
      );
    }
  });

  it('sets up without a one-time prekey (none left: DH4 omitted) with the last-resort KEM prekey', async () => {
    const alice = party();
    const bob = party(0);
    const bundle = claim(bob);
    expect(bundle.oneTimePrekey).toBeUndefined();
    expect(bundle.kemPrekey.lastResort).toBe(true);
    await roundTrip(alice, bob, bundle);
    // The last-resort KEM prekey stays: a second initiator can use it too.
    await roundTrip(party(), bob, claim(bob));
  });

  it('sets up with a one-time KEM prekey and deletes it after use', async () => {
    const alice = party();
    const bob = party(1);
    bob.prekeys.generateOneTimeKemPrekeys(2);
    const bundle = claim(bob, { kemOneTime: true });
    expect(bundle.kemPrekey.lastResort).toBe(false);
    await roundTrip(alice, bob, bundle);
    expect(bob.prekeys.oneTimeKemPrekeyCount).toBe(1);
    expect(bob.prekeys.kemPrekeyKeyPair(bundle.kemPrekey.id, false)).toBeUndefined();
  });

  it('keeps sending the prekey header until answered, so a lost first message does not wedge', async () => {
    const alice = party();
    const bob = party();
    const toBob = Session.initiate(alice.identity, claim(bob), bob.publicKey);
    const lost = await toBob.encrypt(utf8('lost'));
    const second = await toBob.encrypt(utf8('second'));
    expect(decodeSessionMessage(second).type).toBe(SessionMessageType.Prekey);
    expect(toBob.awaitingReply).toBe(true);
    // The first never arrives; the second sets the session up.
    const { session: toAlice, plaintext } = await Session.accept(bob.prekeys, second, alice.publicKey);
    expect(text(plaintext)).toBe('second');
    // The first arrives late after all: same setup, decrypted by the same state.
    const late = await toAlice.decrypt(lost, bob.prekeys);
    expect({ text: text(late.plaintext), startedNewSession: late.startedNewSession }).toEqual({
      text: 'lost',
      startedNewSession: false,
    });
    await toBob.decrypt(await toAlice.encrypt(utf8('ok')), alice.prekeys);
    expect(toBob.awaitingReply).toBe(false);
    expect(decodeSessionMessage(await toBob.encrypt(utf8('x'))).type).toBe(SessionMessageType.Ratchet);
  });
});

describe('session setup: bundles the initiator refuses', () => {
  it('refuses a bad signed-prekey signature (BAD_SIGNATURE)', async () => {
    const bob = party();
    const bundle = claim(bob);
    const signature = bundle.signedPrekey.signature.slice();
    signature[5]! ^= 0x01;
    const forged = { ...bundle, signedPrekey: { ...bundle.signedPrekey, signature } };
    await expectProtocolError(
      () => Session.initiate(party().identity, forged, bob.publicKey),
      ProtocolErrorCode.BadSignature,
      `session setup: signed prekey ${bundle.signedPrekey.id}: the Ed25519 signature does not verify for ${bob.publicKey.fingerprint()}`,
    );
  });

  it('refuses a signed prekey swapped for another (signature over another key: BAD_SIGNATURE)', async () => {
    const bob = party();
    const bundle = claim(bob);
    const other = bob.prekeys.rotateSignedPrekey();
    const forged = { ...bundle, signedPrekey: { ...bundle.signedPrekey, publicKey: other.publicKey } };
    await expectProtocolError(
      () => Session.initiate(party().identity, forged, bob.publicKey),
      ProtocolErrorCode.BadSignature,
      `session setup: signed prekey ${bundle.signedPrekey.id}: the Ed25519 signature does not verify for ${bob.publicKey.fingerprint()}`,
    );
  });

  it('refuses a bad KEM prekey signature (BAD_SIGNATURE), also a one-time key passed off as last-resort', async () => {
    const bob = party();
    const bundle = claim(bob);
    const signature = bundle.kemPrekey.signature.slice();
    signature[0]! ^= 0x80;
    await expectProtocolError(
      () =>
        Session.initiate(
          party().identity,
          { ...bundle, kemPrekey: { ...bundle.kemPrekey, signature } },
          bob.publicKey,
        ),
      ProtocolErrorCode.BadSignature,
      `session setup: last-resort KEM prekey ${bundle.kemPrekey.id}: the Ed25519 signature does not verify for ${bob.publicKey.fingerprint()}`,
    );
    const [oneTime] = bob.prekeys.generateOneTimeKemPrekeys(1);
    await expectProtocolError(
      () =>
        Session.initiate(
          party().identity,
          { ...bundle, kemPrekey: { ...oneTime!, lastResort: true } },
          bob.publicKey,
        ),
      ProtocolErrorCode.BadSignature,
    );
  });

  it('refuses a bundle for the wrong identity (IDENTITY_MISMATCH), even a perfectly valid one', async () => {
    const bob = party();
    const carol = party();
    await expectProtocolError(
      () => Session.initiate(party().identity, claim(carol), bob.publicKey),
      ProtocolErrorCode.IdentityMismatch,
      SessionMessages.bundleIdentityMismatch(bob.publicKey.fingerprint(), carol.publicKey.fingerprint()),
    );
  });

  it("refuses Carol's prekeys presented under Bob's identity (BAD_SIGNATURE)", async () => {
    const bob = party();
    const carol = party();
    const mixed = { ...claim(carol), identityKey: bob.publicKey };
    await expectProtocolError(
      () => Session.initiate(party().identity, mixed, bob.publicKey),
      ProtocolErrorCode.BadSignature,
    );
  });

  it('refuses low-order keys in a bundle (INVALID_KEY), even when validly signed', async () => {
    const bob = party();
    const bundle = claim(bob);
    for (const bytes of LOW_ORDER_X25519) {
      const low = new X25519PublicKey(bytes);
      const spk = { id: 77, publicKey: low, signature: sign(bob.identity, signedPrekeySignedData(77, low)) };
      await expectProtocolError(
        () => Session.initiate(party().identity, { ...bundle, signedPrekey: spk }, bob.publicKey),
        ProtocolErrorCode.InvalidKey,
      );
      await expectProtocolError(
        () =>
          Session.initiate(
            party().identity,
            { ...bundle, oneTimePrekey: { id: 5, publicKey: low } },
            bob.publicKey,
          ),
        ProtocolErrorCode.InvalidKey,
      );
    }
    const lowIdentity = new IdentityPublicKey(LOW_ORDER_ED25519);
    await expectProtocolError(
      () => Session.initiate(party().identity, { ...bundle, identityKey: lowIdentity }, lowIdentity),
      ProtocolErrorCode.InvalidKey,
    );
    // The signature helper binds kind and id too: a record signed for another id does not verify.
    expect(kemPrekeySignedData(true, 1, bundle.kemPrekey.publicKey)).not.toEqual(
      kemPrekeySignedData(true, 2, bundle.kemPrekey.publicKey),
    );
  });
});

describe('session setup: initial messages the responder refuses', () => {
  async function firstMessage(bob: Party, alice = party(), opts?: { oneTime?: boolean }) {
    const bundle = claim(bob, opts);
    const toBob = Session.initiate(alice.identity, bundle, bob.publicKey);
    return { alice, bundle, toBob, message: await toBob.encrypt(utf8('first')) };
  }

  it('refuses a reused one-time prekey (BAD_PREKEY) with the exact message', async () => {
    const bob = party();
    const { alice, bundle, message } = await firstMessage(bob);
    await Session.accept(bob.prekeys, message, alice.publicKey);
    // A second initiator given the same one-time prekey (a relay that hands it out twice):
    const mallory = party();
    const again = Session.initiate(mallory.identity, bundle, bob.publicKey);
    await expectProtocolError(
      Session.accept(bob.prekeys, await again.encrypt(utf8('x')), mallory.publicKey),
      ProtocolErrorCode.BadPrekey,
      `session setup: one-time prekey ${bundle.oneTimePrekey!.id} is unknown or was already used: the sender should claim a fresh bundle`,
    );
    // The very same initial message again, to a responder that lost the session:
    await expectProtocolError(
      Session.accept(bob.prekeys, message, alice.publicKey),
      ProtocolErrorCode.BadPrekey,
      SessionMessages.unknownOneTimePrekey(bundle.oneTimePrekey!.id),
    );
  });

  it('refuses unknown signed, one-time and KEM prekey ids (BAD_PREKEY), consuming nothing', async () => {
    const bob = party();
    const { alice, bundle, message } = await firstMessage(bob);
    const kemId = bundle.kemPrekey.id;
    const cases = [
      { change: { signedPrekeyId: 4242 }, text: SessionMessages.unknownSignedPrekey(4242) },
      { change: { oneTimePrekeyId: 4242 }, text: SessionMessages.unknownOneTimePrekey(4242) },
      { change: { kemPrekeyId: 4242 }, text: SessionMessages.unknownKemPrekey(4242, false) },
      // The last-resort KEM prekey's id presented as a one-time KEM prekey's.
      { change: { kemPrekeyLastResort: false }, text: SessionMessages.unknownKemPrekey(kemId, true) },
    ];
    for (const c of cases) {
      const forged = rewriteHeader(message, (h) => ({ ...h, ...c.change }));
      await expectProtocolError(
        Session.accept(bob.prekeys, forged, alice.publicKey),
        ProtocolErrorCode.BadPrekey,
        c.text,
      );
    }
    expect(bob.prekeys.oneTimePrekeyCount).toBe(5);
  });

  it('refuses a KEM ciphertext swapped for another encapsulation (BAD_MAC), and consumes nothing', async () => {
    const bob = party();
    const { alice, bundle, message } = await firstMessage(bob);
    const swapped = rewriteHeader(message, (h) => ({
      ...h,
      kemCiphertext: kemEncapsulate(bundle.kemPrekey.publicKey).ciphertext,
    }));
    await expectProtocolError(
      Session.accept(bob.prekeys, swapped, alice.publicKey),
      ProtocolErrorCode.BadMac,
      'session setup: the initial message does not authenticate (its keys or KEM ciphertext were swapped or corrupted, or it was not made for our prekeys)',
    );
    expect(bob.prekeys.oneTimePrekeyKeyPair(bundle.oneTimePrekey!.id)).toBeDefined();
    // The genuine message still sets the session up.
    expect(text((await Session.accept(bob.prekeys, message, alice.publicKey)).plaintext)).toBe('first');
  });

  it('refuses a corrupted KEM ciphertext (implicit rejection: BAD_MAC), in either component', async () => {
    const bob = party();
    const { alice, message } = await firstMessage(bob);
    // X-Wing's ciphertext is ML-KEM-768's (1088 bytes) then X25519's (32).
    for (const at of [0, 500, 1087, 1088, XWING_CIPHERTEXT_BYTES - 1]) {
      const corrupted = rewriteHeader(message, (h) => {
        const kemCiphertext = h.kemCiphertext.slice();
        kemCiphertext[at]! ^= 0x04;
        return { ...h, kemCiphertext };
      });
      await expectProtocolError(
        Session.accept(bob.prekeys, corrupted, alice.publicKey),
        ProtocolErrorCode.BadMac,
        SessionMessages.initialMessageDoesNotAuthenticate(),
      );
    }
  });

  it('refuses an initial message whose ephemeral key or prekey choice was swapped (BAD_MAC)', async () => {
    const bob = party();
    const { alice, message } = await firstMessage(bob);
    const other = (await firstMessage(bob)).message;
    const otherHeader = decodeSessionMessage(other);
    if (otherHeader.type !== SessionMessageType.Prekey) throw new Error('expected a prekey message');
    const swappedEphemeral = rewriteHeader(message, (h) => ({
      ...h,
      ephemeralKey: otherHeader.header.ephemeralKey,
    }));
    await expectProtocolError(
      Session.accept(bob.prekeys, swappedEphemeral, alice.publicKey),
      ProtocolErrorCode.BadMac,
      SessionMessages.initialMessageDoesNotAuthenticate(),
    );
    const swappedOneTime = rewriteHeader(message, (h) => ({
      ...h,
      oneTimePrekeyId: otherHeader.header.oneTimePrekeyId,
    }));
    await expectProtocolError(
      Session.accept(bob.prekeys, swappedOneTime, alice.publicKey),
      ProtocolErrorCode.BadMac,
    );
  });

  it('refuses an initial message that claims another identity (IDENTITY_MISMATCH or BAD_MAC)', async () => {
    const bob = party();
    const { alice, message } = await firstMessage(bob);
    const carol = generateIdentityKeyPair().publicKey;
    // The relay says it came from Carol: the message names Alice.
    await expectProtocolError(
      Session.accept(bob.prekeys, message, carol),
      ProtocolErrorCode.IdentityMismatch,
      SessionMessages.senderIdentityMismatch(carol.fingerprint(), alice.publicKey.fingerprint()),
    );
    // Mallory rewrites IK_A to Carol's: DH1 and AD change, so nothing authenticates.
    const forged = rewriteHeader(message, (h) => ({ ...h, identityKey: carol }));
    await expectProtocolError(
      Session.accept(bob.prekeys, forged, carol),
      ProtocolErrorCode.BadMac,
      SessionMessages.initialMessageDoesNotAuthenticate(),
    );
  });

  it('refuses low-order keys in an initial message (INVALID_KEY) and consumes nothing', async () => {
    const bob = party();
    const { alice, bundle, message } = await firstMessage(bob);
    for (const bytes of LOW_ORDER_X25519) {
      const forged = rewriteHeader(message, (h) => ({ ...h, ephemeralKey: new X25519PublicKey(bytes) }));
      await expectProtocolError(
        Session.accept(bob.prekeys, forged, alice.publicKey),
        ProtocolErrorCode.InvalidKey,
      );
    }
    const lowIdentity = new IdentityPublicKey(LOW_ORDER_ED25519);
    const forged = rewriteHeader(message, (h) => ({ ...h, identityKey: lowIdentity }));
    await expectProtocolError(Session.accept(bob.prekeys, forged, lowIdentity), ProtocolErrorCode.InvalidKey);
    expect(bob.prekeys.oneTimePrekeyKeyPair(bundle.oneTimePrekey!.id)).toBeDefined();
  });

  it('refuses a first message that is a plain ratchet message (NO_SESSION)', async () => {
    const bob = party();
    const alice = party();
    const { toBob, message } = await firstMessage(bob, alice);
    const { session: toAlice } = await Session.accept(bob.prekeys, message, alice.publicKey);
    await toBob.decrypt(await toAlice.encrypt(utf8('ack')), alice.prekeys);
    const plain = await toBob.encrypt(utf8('plain'));
    await expectProtocolError(
      Session.accept(party().prekeys, plain, alice.publicKey),
      ProtocolErrorCode.NoSession,
      SessionMessages.noSessionForRatchetMessage(),
    );
  });
});
