import { fromHex, randomBytes, sha256, sha256Sync, toHex } from '@usm/crypto';
import * as labels from './kdf-labels.js';
import { Transcript, deriveHandshakeKeys, deriveSessionSecrets, replayKey } from './key-schedule.js';
import { world } from './handshake-kit.test.js';

beforeAll(() => world());

describe('sha256Sync (libsodium) for transcript hashes', () => {
  it('matches FIPS 180-4 known answers and the async hash-wasm SHA-256', async () => {
    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc" and the empty string.
    expect(toHex(sha256Sync(new TextEncoder().encode('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(toHex(sha256Sync(new Uint8Array(0)))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    for (const length of [1, 55, 56, 64, 500]) {
      const data = randomBytes(length);
      expect(toHex(sha256Sync(data))).toBe(toHex(await sha256(data)));
    }
  });
});

describe('key schedule', () => {
  it('every label and signature context is distinct', () => {
    const all = Object.values(labels).map((l) => toHex(l));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(12);
  });

  it('signature contexts end in a zero byte (RFC 8446 §4.4.3 separator)', () => {
    for (const context of [
      labels.CLIENT_INIT_SIGNATURE_CONTEXT,
      labels.RELAY_SIGNATURE_CONTEXT,
      labels.CLIENT_SIGNATURE_CONTEXT,
    ]) {
      expect(context[context.length - 1]).toBe(0);
    }
  });

  it('derives four distinct handshake keys, bound to the transcript, and wipes the DH output', () => {
    const dh = randomBytes(32);
    const copy = dh.slice();
    const th = sha256Sync(randomBytes(10));
    const keys = deriveHandshakeKeys(dh, th);
    expect(dh.every((b) => b === 0)).toBe(true);
    const hex = Object.values(keys).map((k) => toHex(k));
    expect(new Set(hex).size).toBe(4);
    const other = deriveHandshakeKeys(copy.slice(), sha256Sync(randomBytes(10)));
    expect(toHex(other.materialKey)).not.toBe(toHex(keys.materialKey));
    const same = deriveHandshakeKeys(copy, th);
    expect(toHex(same.masterSecret)).toBe(toHex(keys.masterSecret));
  });

  it('derives distinct traffic keys and session id from the full transcript', () => {
    const master = randomBytes(32);
    const a = deriveSessionSecrets(master, sha256Sync(Uint8Array.of(1)));
    const b = deriveSessionSecrets(master, sha256Sync(Uint8Array.of(2)));
    expect(new Set([a.clientToRelay, a.relayToClient, a.sessionId].map(toHex)).size).toBe(3);
    expect(toHex(a.clientToRelay)).not.toBe(toHex(b.clientToRelay));
  });

  it('hashes the transcript as the concatenation of its parts, in order', () => {
    const t = new Transcript().append(Uint8Array.of(1, 2), Uint8Array.of(3));
    expect(toHex(t.hash())).toBe(toHex(sha256Sync(Uint8Array.of(1, 2, 3))));
    t.append(Uint8Array.of(4));
    expect(toHex(t.hash())).toBe(toHex(sha256Sync(Uint8Array.of(1, 2, 3, 4))));
  });

  it('the replay key depends on both the identity and the nonce', () => {
    const nonce = randomBytes(32);
    const id = fromHex('01'.repeat(34));
    expect(toHex(replayKey(id, nonce))).not.toBe(toHex(replayKey(fromHex('02'.repeat(34)), nonce)));
    expect(toHex(replayKey(id, nonce))).not.toBe(toHex(replayKey(id, randomBytes(32))));
  });
});
