/**
 * Crypto in the protocol: every low-order X25519 public key of Wycheproof, put where the protocol
 * takes an X25519 key from someone else (signed prekey, one-time prekey, session-setup ephemeral,
 * handshake ephemeral both ways, ratchet key in a header), is refused with INVALID_KEY before any
 * session or state exists; and AES-256-GCM refuses tags truncated to 0, 4, 8, 12 and 15 bytes on
 * both backends.
 *
 * Already proven elsewhere with fewer points (cited in the report): session-setup.spec.ts (two
 * points in bundles and initial messages), handshake.spec.ts (seven points each way).
 */
import * as nodeCrypto from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  CryptoError,
  CryptoErrorCode,
  DoubleRatchet,
  X25519PublicKey,
  concatBytes,
  createNodeAesGcm,
  createWebCryptoAesGcm,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  randomBytes,
  ready,
  sign,
} from '@usm/crypto';
import { ProtocolErrorCode, Session } from '@usm/protocol';
import { sealHeader } from '../../libs/crypto/src/ratchet/header.js';
import { encodeRatchetMessage } from '../../libs/crypto/src/ratchet/ratchet-message.js';
import { impostorResponse, signedInit, world } from '../../libs/protocol/src/handshake/handshake-kit.test.js';
import { signedPrekeySignedData } from '../../libs/protocol/src/session/prekeys.js';
import { claim, party, rewriteHeader, utf8 } from '../../libs/protocol/src/session/session-kit.test.js';
import { recordCase } from './report.js';
import { type LowOrderVector, lowOrderX25519Vectors } from './support/vectors.js';

const bytesEqual = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

let vectors: LowOrderVector[];
beforeAll(async () => {
  await ready();
  vectors = lowOrderX25519Vectors();
});

/** Runs `op` for every vector; returns how many threw exactly `code` (ProtocolError or CryptoError). */
async function countRefused(
  op: (v: LowOrderVector) => Promise<unknown>,
  isExpected: (err: unknown) => boolean,
): Promise<{ refused: number; other: string[] }> {
  let refused = 0;
  const other: string[] = [];
  for (const v of vectors) {
    try {
      await op(v);
      other.push(`tcId ${v.tcId}: accepted`);
    } catch (err) {
      if (isExpected(err)) refused++;
      else other.push(`tcId ${v.tcId}: ${(err as { code?: string }).code ?? String(err)}`);
    }
  }
  return { refused, other };
}

const protocolInvalidKey = (err: unknown) =>
  (err as { code?: string }).code === ProtocolErrorCode.InvalidKey && err instanceof Error;

describe('crypto in the protocol: low-order X25519 keys (Wycheproof)', () => {
  it('uses all 31 low-order vectors of x25519_test.json', () => {
    expect(vectors).toHaveLength(31);
    expect(new Set(vectors.map((v) => Buffer.from(v.publicKey).toString('hex'))).size).toBe(14);
  });

  it('as a signed prekey (validly signed) or a one-time prekey in a bundle: INVALID_KEY, no session', async () => {
    const bob = party();
    const alice = party();
    const bundle = claim(bob);
    const sessions: Session[] = [];
    const asSigned = await countRefused(async (v) => {
      const low = new X25519PublicKey(v.publicKey);
      const spk = { id: 77, publicKey: low, signature: sign(bob.identity, signedPrekeySignedData(77, low)) };
      sessions.push(Session.initiate(alice.identity, { ...bundle, signedPrekey: spk }, bob.publicKey));
    }, protocolInvalidKey);
    const asOneTime = await countRefused(async (v) => {
      const opk = { id: 5, publicKey: new X25519PublicKey(v.publicKey) };
      sessions.push(Session.initiate(alice.identity, { ...bundle, oneTimePrekey: opk }, bob.publicKey));
    }, protocolInvalidKey);
    recordCase({
      id: 'C1',
      title:
        'Low-order X25519 key as signed prekey and as one-time prekey of a bundle: INVALID_KEY, no session',
      figures: {
        vectors: vectors.length,
        'refused as signed prekey': asSigned.refused,
        'refused as one-time prekey': asOneTime.refused,
        'sessions created': sessions.length,
      },
      outcome:
        asSigned.refused === vectors.length && asOneTime.refused === vectors.length && sessions.length === 0
          ? 'pass'
          : 'fail',
    });
    expect([...asSigned.other, ...asOneTime.other]).toEqual([]);
    expect(sessions).toHaveLength(0);
    // The same bundle with its genuine keys still works: nothing was consumed.
    const genuine = Session.initiate(alice.identity, bundle, bob.publicKey);
    const { plaintext } = await Session.accept(
      bob.prekeys,
      await genuine.encrypt(utf8('hi')),
      alice.publicKey,
    );
    expect(plaintext).toEqual(utf8('hi'));
  });

  it("as the initiator's ephemeral of a session setup: INVALID_KEY, no session, the prekeys untouched", async () => {
    const bob = party();
    const alice = party();
    const bundle = claim(bob);
    const toBob = Session.initiate(alice.identity, bundle, bob.publicKey);
    const first = await toBob.encrypt(utf8('first'));
    const before = await bob.prekeys.pickle();
    const accepted: unknown[] = [];
    const result = await countRefused(async (v) => {
      const forged = rewriteHeader(first, (h) => ({ ...h, ephemeralKey: new X25519PublicKey(v.publicKey) }));
      accepted.push(await Session.accept(bob.prekeys, forged, alice.publicKey));
    }, protocolInvalidKey);
    const unchanged = bytesEqual(await bob.prekeys.pickle(), before);
    recordCase({
      id: 'C2',
      title:
        'Low-order X25519 key as the session-setup ephemeral (EK_A): INVALID_KEY, no session, prekeys unchanged',
      figures: {
        vectors: vectors.length,
        refused: result.refused,
        'sessions created': accepted.length,
        'prekey store unchanged': String(unchanged),
      },
      outcome: result.refused === vectors.length && accepted.length === 0 && unchanged ? 'pass' : 'fail',
    });
    expect(result.other).toEqual([]);
    expect(unchanged).toBe(true);
    // The genuine first message still sets the session up (its one-time prekey was not consumed).
    const { plaintext } = await Session.accept(bob.prekeys, first, alice.publicKey);
    expect(plaintext).toEqual(utf8('first'));
  });

  it('as the client ephemeral of a handshake Init (relay side) and the relay ephemeral of a Response (client side): INVALID_KEY', async () => {
    const w = await world();
    const relaySide = await countRefused(
      (v) => w.newRelay().receiveInit(signedInit(w.client, new X25519PublicKey(v.publicKey), w.clock.now())),
      protocolInvalidKey,
    );
    const nonces = w.store.size;
    const sessions: unknown[] = [];
    const clientSide = await countRefused(async (v) => {
      const client = w.newClient();
      const init = client.start();
      const forged = await impostorResponse(init, {
        ephemeral: v.publicKey,
        claimedIdentity: w.relay.publicKey,
        signature: new Uint8Array(64),
        timestampMs: w.clock.now(),
      });
      sessions.push(await client.receiveResponse(forged));
    }, protocolInvalidKey);
    recordCase({
      id: 'C3',
      title:
        'Low-order X25519 key as a handshake ephemeral, both directions: INVALID_KEY, no nonce stored, no session',
      figures: {
        vectors: vectors.length,
        'refused by the relay (Init)': relaySide.refused,
        'refused by the client (Response)': clientSide.refused,
        'nonces stored': nonces,
        'sessions created': sessions.length,
      },
      outcome:
        relaySide.refused === vectors.length &&
        clientSide.refused === vectors.length &&
        nonces === 0 &&
        sessions.length === 0
          ? 'pass'
          : 'fail',
    });
    expect([...relaySide.other, ...clientSide.other]).toEqual([]);
    expect(nonces).toBe(0);
  });

  it('as the ratchet key in a header sealed under the right header key: INVALID_KEY, the ratchet state unchanged', async () => {
    const sharedSecret = randomBytes(32);
    const initiatorHeaderKey = randomBytes(32);
    const responderNextHeaderKey = randomBytes(32);
    const bobPrekey = generateX25519KeyPair();
    const associatedData = concatBytes(
      generateIdentityKeyPair().publicKey.encode(),
      generateIdentityKeyPair().publicKey.encode(),
    );
    const alice = DoubleRatchet.initAlice({
      sharedSecret,
      remoteRatchetKey: bobPrekey.publicKey,
      initiatorHeaderKey,
      responderNextHeaderKey,
      associatedData,
    });
    const bob = DoubleRatchet.initBob({
      sharedSecret,
      ratchetKeyPair: bobPrekey,
      initiatorHeaderKey,
      responderNextHeaderKey,
      associatedData,
    });
    const genuine = await alice.encrypt(utf8('genuine'));
    const before = await bob.pickle();
    // Someone who knows the initial header key (as the initiator does) seals a header naming a
    // low-order ratchet key: it opens under Bob's NHKr and leads to the DH ratchet step.
    const result = await countRefused(
      async (v) => {
        const encryptedHeader = await sealHeader(
          initiatorHeaderKey,
          { dh: v.publicKey, pn: 0, n: 0 },
          associatedData,
        );
        const body = randomBytes(48);
        await bob.decrypt(encodeRatchetMessage(encryptedHeader, body));
      },
      (err) => CryptoError.is(err, CryptoErrorCode.InvalidKey),
    );
    const unchanged = bytesEqual(await bob.pickle(), before);
    const plaintext = await bob.decrypt(genuine);
    recordCase({
      id: 'C4',
      title:
        'Low-order X25519 key as the ratchet key of an authentic header: INVALID_KEY, state unchanged, the next genuine message decrypts',
      figures: {
        vectors: vectors.length,
        refused: result.refused,
        'state unchanged': String(unchanged),
        'genuine decrypts': String(bytesEqual(plaintext, utf8('genuine'))),
      },
      outcome:
        result.refused === vectors.length && unchanged && bytesEqual(plaintext, utf8('genuine'))
          ? 'pass'
          : 'fail',
    });
    expect(result.other).toEqual([]);
    expect(unchanged).toBe(true);
    expect(plaintext).toEqual(utf8('genuine'));
  });
});

describe('crypto in the protocol: AES-256-GCM with truncated tags', () => {
  const TAG_LENGTHS = [0, 4, 8, 12, 15];

  it('refuses a tag cut to 0, 4, 8, 12 or 15 bytes on both backends (BAD_MAC, or MALFORMED_INPUT when shorter than a tag)', async () => {
    const backends = [createNodeAesGcm(nodeCrypto as never), createWebCryptoAesGcm(globalThis.crypto.subtle)];
    const outcomes: string[] = [];
    let refused = 0;
    let trials = 0;
    for (const backend of backends) {
      for (const plaintextBytes of [0, 32]) {
        const key = randomBytes(32);
        const iv = randomBytes(12);
        const aad = randomBytes(16);
        const sealed = await backend.encrypt(key, iv, randomBytes(plaintextBytes), aad);
        expect(sealed.length).toBe(plaintextBytes + 16);
        for (const tag of TAG_LENGTHS) {
          trials++;
          const cut = sealed.subarray(0, plaintextBytes + tag);
          // Shorter than one full tag: refused as malformed; otherwise the last 16 bytes are taken
          // as the tag (part ciphertext), which cannot verify.
          const expected = cut.length < 16 ? CryptoErrorCode.MalformedInput : CryptoErrorCode.BadMac;
          try {
            await backend.decrypt(key, iv, cut, aad);
            outcomes.push(`${backend.name} ${plaintextBytes}+${tag}: accepted`);
          } catch (err) {
            if (CryptoError.is(err, expected)) refused++;
            else outcomes.push(`${backend.name} ${plaintextBytes}+${tag}: ${(err as Error).message}`);
          }
        }
      }
    }
    recordCase({
      id: 'C5',
      title: 'AES-256-GCM tags truncated to 0, 4, 8, 12, 15 bytes refused (node:crypto and WebCrypto)',
      figures: { backends: backends.map((b) => b.name).join(', '), trials, refused },
      outcome: refused === trials ? 'pass' : 'fail',
    });
    expect(outcomes).toEqual([]);
    expect(refused).toBe(2 * 2 * TAG_LENGTHS.length);
  });
});
