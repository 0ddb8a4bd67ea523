/**
 * The per-peer Session: replays after the session moved on, the reset path for a wedged session
 * (a corrupted or foreign state), what an attacker cannot make a reset do, simultaneous
 * initiation, and pickles.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { MAX_ARCHIVED_SESSION_STATES } from './limits.js';
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

/** A session both ways, answered once (so neither side repeats a prekey header). */
async function established(alice: Party, bob: Party, opts: { oneTime?: boolean } = {}) {
  const toBob = Session.initiate(alice.identity, claim(bob, opts), bob.publicKey);
  const first = await toBob.encrypt(utf8('first'));
  const { session: toAlice } = await Session.accept(bob.prekeys, first, alice.publicKey);
  await toBob.decrypt(await toAlice.encrypt(utf8('reply')), alice.prekeys);
  return { toBob, toAlice, first };
}

/** Sends `body` from `from` to `to` and returns what `to` decrypted. */
async function send(from: Session, to: Session, receiver: Party, body: string) {
  const result = await to.decrypt(await from.encrypt(utf8(body)), receiver.prekeys);
  return { text: text(result.plaintext), startedNewSession: result.startedNewSession };
}

describe('Session: replays', () => {
  it('refuses the initial message replayed after the session moved on (REPLAY), without a one-time prekey too', async () => {
    for (const oneTime of [true, false]) {
      const alice = party();
      const bob = party();
      const { toBob, toAlice, first } = await established(alice, bob, { oneTime });
      await send(toBob, toAlice, bob, 'moving on');
      await send(toAlice, toBob, alice, 'and on');
      await expectProtocolError(
        toAlice.decrypt(first, bob.prekeys),
        ProtocolErrorCode.Replay,
        SessionMessages.replayedMessage(),
      );
      // Nothing changed: the conversation continues.
      expect(await send(toBob, toAlice, bob, 'still here')).toEqual({
        text: 'still here',
        startedNewSession: false,
      });
    }
  });

  it('refuses a replayed ratchet message (REPLAY)', async () => {
    const alice = party();
    const bob = party();
    const { toBob, toAlice } = await established(alice, bob);
    const m = await toBob.encrypt(utf8('once'));
    await toAlice.decrypt(m, bob.prekeys);
    await expectProtocolError(
      toAlice.decrypt(m, bob.prekeys),
      ProtocolErrorCode.Replay,
      SessionMessages.replayedMessage(),
    );
  });

  it('refuses an old initial message whose session was replaced long ago (REPLAY), not resetting to it', async () => {
    const alice = party();
    const bob = party(0); // no one-time prekeys: PQXDH itself would accept the replay (§4.2)
    const { toBob, toAlice, first } = await established(alice, bob);
    const oldSetup = toAlice.setupId;
    // Alice resets more often than Bob's archive holds, pushing the first setup out of it.
    for (let i = 0; i <= MAX_ARCHIVED_SESSION_STATES; i++) {
      await toBob.restart(alice.identity, claim(bob));
      expect(await send(toBob, toAlice, bob, `reset ${i}`)).toEqual({
        text: `reset ${i}`,
        startedNewSession: true,
      });
    }
    const current = toAlice.setupId;
    expect(current).not.toBe(oldSetup);
    await expectProtocolError(
      toAlice.decrypt(first, bob.prekeys),
      ProtocolErrorCode.Replay,
      SessionMessages.replayedInitialMessage(),
    );
    expect(toAlice.setupId).toBe(current);
    expect(await send(toBob, toAlice, bob, 'after')).toEqual({ text: 'after', startedNewSession: false });
  });
});

describe('Session: reset of a wedged session', () => {
  it("recovers when the responder's pickled state is replaced by garbage", async () => {
    const alice = party();
    const bob = party();
    const { toBob, toAlice } = await established(alice, bob);
    const key = randomBytes(32);
    const saved = await toAlice.pickle(key);
    const garbage = randomBytes(saved.length);
    garbage[0] = 1; // "encrypted" format byte, random contents
    await expectProtocolError(Session.fromPickle(garbage, key), ProtocolErrorCode.BadPickle);
    // Bob has lost the session. Alice's messages cannot be read:
    const unreadable = await toBob.encrypt(utf8('lost to the corruption'));
    await expectProtocolError(
      Session.accept(bob.prekeys, unreadable, alice.publicKey),
      ProtocolErrorCode.NoSession,
      SessionMessages.noSessionForRatchetMessage(),
    );
    // Bob starts a fresh session with Alice from her bundle; the conversation recovers.
    const toAlice2 = Session.initiate(bob.identity, claim(alice), alice.publicKey);
    expect(await send(toAlice2, toBob, alice, 'reset')).toEqual({ text: 'reset', startedNewSession: true });
    expect(await send(toBob, toAlice2, bob, 'flows again')).toEqual({
      text: 'flows again',
      startedNewSession: false,
    });
    expect(await send(toAlice2, toBob, alice, 'both ways')).toEqual({
      text: 'both ways',
      startedNewSession: false,
    });
    expect(toAlice2.awaitingReply).toBe(false);
  });

  it("recovers when the responder's state is replaced by one from another session with the same peer", async () => {
    const alice = party();
    const bob = party();
    const older = await established(alice, bob);
    const staleBobState = await older.toAlice.pickle();
    const { toBob } = await established(alice, bob);
    // Bob's storage now holds the older session's state instead of the current one.
    const toAlice = await Session.fromPickle(staleBobState);
    const unreadable = await toBob.encrypt(utf8('unreadable'));
    await expectProtocolError(
      toAlice.decrypt(unreadable, bob.prekeys),
      ProtocolErrorCode.NoSession,
      SessionMessages.noSessionForRatchetMessage(),
    );
    await toAlice.restart(bob.identity, claim(alice));
    expect(toAlice.awaitingReply).toBe(true);
    const reset = await toAlice.encrypt(utf8('reset'));
    expect(decodeSessionMessage(reset).type).toBe(SessionMessageType.Prekey);
    expect(await toBob.decrypt(reset, alice.prekeys)).toEqual({
      plaintext: utf8('reset'),
      startedNewSession: true,
    });
    expect(await send(toBob, toAlice, bob, 'flows again')).toEqual({
      text: 'flows again',
      startedNewSession: false,
    });
    expect(toAlice.awaitingReply).toBe(false);
    expect(toAlice.setupId).toBe(toBob.setupId);
  });

  it('still decrypts late mail of the replaced session (archived state)', async () => {
    const alice = party();
    const bob = party();
    const { toBob, toAlice } = await established(alice, bob);
    const late = await toBob.encrypt(utf8('sent before the reset'));
    await toAlice.restart(bob.identity, claim(alice));
    expect(await send(toAlice, toBob, alice, 'reset')).toEqual({ text: 'reset', startedNewSession: true });
    expect(text((await toAlice.decrypt(late, bob.prekeys)).plaintext)).toBe('sent before the reset');
  });

  it('converges when both peers start a session at the same time', async () => {
    const alice = party();
    const bob = party();
    const aToB = Session.initiate(alice.identity, claim(bob), bob.publicKey);
    const bToA = Session.initiate(bob.identity, claim(alice), alice.publicKey);
    const fromAlice = await aToB.encrypt(utf8('hi from Alice'));
    const fromBob = await bToA.encrypt(utf8('hi from Bob'));
    expect(await bToA.decrypt(fromAlice, bob.prekeys)).toEqual({
      plaintext: utf8('hi from Alice'),
      startedNewSession: true,
    });
    expect(await aToB.decrypt(fromBob, alice.prekeys)).toEqual({
      plaintext: utf8('hi from Bob'),
      startedNewSession: true,
    });
    for (let i = 0; i < 3; i++) {
      expect((await send(aToB, bToA, bob, `a${i}`)).text).toBe(`a${i}`);
      expect((await send(bToA, aToB, alice, `b${i}`)).text).toBe(`b${i}`);
    }
    expect(aToB.setupId).toBe(bToA.setupId);
  });
});

describe('Session: what an attacker cannot make a reset do', () => {
  it("refuses a prekey message from another identity on this peer's session (IDENTITY_MISMATCH), unchanged", async () => {
    const alice = party();
    const bob = party();
    const mallory = party();
    const { toBob, toAlice } = await established(alice, bob);
    const fromMallory = await Session.initiate(mallory.identity, claim(bob), bob.publicKey).encrypt(
      utf8('x'),
    );
    await expectProtocolError(
      toAlice.decrypt(fromMallory, bob.prekeys),
      ProtocolErrorCode.IdentityMismatch,
      SessionMessages.senderIdentityMismatch(alice.publicKey.fingerprint(), mallory.publicKey.fingerprint()),
    );
    const setup = toAlice.setupId;
    expect(await send(toBob, toAlice, bob, 'unchanged')).toEqual({
      text: 'unchanged',
      startedNewSession: false,
    });
    expect(toAlice.setupId).toBe(setup);
  });

  it("refuses a prekey message that names the peer's identity without its secret (BAD_MAC), unchanged", async () => {
    const alice = party();
    const bob = party();
    const mallory = party();
    const { toBob, toAlice } = await established(alice, bob);
    const bundle = claim(bob);
    const made = await Session.initiate(mallory.identity, bundle, bob.publicKey).encrypt(utf8('reset to me'));
    const forged = rewriteHeader(made, (h) => ({ ...h, identityKey: alice.publicKey }));
    await expectProtocolError(
      toAlice.decrypt(forged, bob.prekeys),
      ProtocolErrorCode.BadMac,
      SessionMessages.initialMessageDoesNotAuthenticate(),
    );
    expect(bob.prekeys.oneTimePrekeyKeyPair(bundle.oneTimePrekey!.id)).toBeDefined();
    expect(await send(toBob, toAlice, bob, 'unchanged')).toEqual({
      text: 'unchanged',
      startedNewSession: false,
    });
  });

  it('changes nothing when a new prekey message fails midway (BAD_PREKEY)', async () => {
    const alice = party();
    const bob = party();
    const { toBob, toAlice } = await established(alice, bob);
    const bundle = claim(bob);
    const reset = await Session.initiate(alice.identity, bundle, bob.publicKey).encrypt(utf8('x'));
    const forged = rewriteHeader(reset, (h) => ({ ...h, signedPrekeyId: h.signedPrekeyId + 1 }));
    await expectProtocolError(toAlice.decrypt(forged, bob.prekeys), ProtocolErrorCode.BadPrekey);
    expect(await send(toBob, toAlice, bob, 'unchanged')).toEqual({
      text: 'unchanged',
      startedNewSession: false,
    });
  });
});

describe('Session: pickles', () => {
  it('round-trips plain and encrypted, with the pending prekey header and archived states', async () => {
    const alice = party();
    const bob = party();
    const { toAlice } = await established(alice, bob);
    const toBob = Session.initiate(alice.identity, claim(bob), bob.publicKey);
    await toBob.restart(alice.identity, claim(bob));
    const key = randomBytes(32);
    const restoredToBob = await Session.fromPickle(await toBob.pickle(key), key);
    expect(restoredToBob.awaitingReply).toBe(true);
    expect(restoredToBob.setupId).toBe(toBob.setupId);
    expect(restoredToBob.peerIdentity.equals(bob.publicKey)).toBe(true);
    const m = await restoredToBob.encrypt(utf8('from a restored session'));
    expect(decodeSessionMessage(m).type).toBe(SessionMessageType.Prekey);
    const restoredToAlice = await Session.fromPickle(await toAlice.pickle());
    expect(await restoredToAlice.decrypt(m, bob.prekeys)).toEqual({
      plaintext: utf8('from a restored session'),
      startedNewSession: true,
    });
    expect((await send(restoredToAlice, restoredToBob, alice, 'back')).text).toBe('back');
    // Pickles of the same state are stable apart from the encryption's random nonce.
    const plain = await restoredToBob.pickle();
    const copy = plain.slice();
    const again = await Session.fromPickle(plain);
    expect(plain).toEqual(copy); // loading wipes its own copies, never the caller's bytes
    expect(await again.pickle()).toEqual(plain);
  });

  it('refuses a pickle under the wrong key, a plain one where an encrypted one is expected, and garbage (BAD_PICKLE)', async () => {
    const alice = party();
    const bob = party();
    const { toBob } = await established(alice, bob);
    const key = randomBytes(32);
    const sealed = await toBob.pickle(key);
    await expectProtocolError(
      Session.fromPickle(sealed, randomBytes(32)),
      ProtocolErrorCode.BadPickle,
      'session pickle: does not decrypt (another key, or corrupted)',
    );
    await expectProtocolError(
      Session.fromPickle(await toBob.pickle(), key),
      ProtocolErrorCode.BadPickle,
      'session pickle: expected an encrypted pickle, got a plain one',
    );
    await expectProtocolError(
      Session.fromPickle(sealed),
      ProtocolErrorCode.BadPickle,
      'session pickle: the pickle is encrypted: pass its key',
    );
    const plain = await toBob.pickle();
    for (const broken of [
      plain.subarray(0, plain.length - 1),
      Uint8Array.of(0, 9),
      Uint8Array.of(7),
      new Uint8Array(0),
    ]) {
      await expectProtocolError(Session.fromPickle(broken), ProtocolErrorCode.BadPickle);
    }
    const wrongVersion = plain.slice();
    wrongVersion[1] = 2;
    await expectProtocolError(
      Session.fromPickle(wrongVersion),
      ProtocolErrorCode.BadPickle,
      'session pickle: expected version 1, got 2',
    );
  });

  it('never prints a key: toJSON and inspect show the peer fingerprint and setup id only', async () => {
    const alice = party();
    const bob = party();
    const { toBob } = await established(alice, bob);
    const json = JSON.stringify({ toBob });
    expect(json).toBe(
      JSON.stringify({
        toBob: `Session(peer ${bob.publicKey.fingerprint()}, setup ${toBob.setupId.slice(0, 16)}, states 1)`,
      }),
    );
  });
});
