import { inspect } from 'node:util';
import {
  CryptoError,
  CryptoErrorCode,
  IdentityPublicKey,
  X25519PublicKey,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  ready,
  sign,
  verify,
  x25519,
} from './index.js';

beforeAll(() => ready());

describe('keys', () => {
  it('encodes with version and type, and refuses another type', () => {
    const id = generateIdentityKeyPair();
    const enc = id.publicKey.encode();
    expect(enc.length).toBe(34);
    expect([enc[0], enc[1]]).toEqual([1, 1]);
    expect(IdentityPublicKey.decode(enc).equals(id.publicKey)).toBe(true);
    const err = (() => {
      try {
        X25519PublicKey.decode(enc);
      } catch (e) {
        return e;
      }
    })();
    expect(CryptoError.is(err, CryptoErrorCode.InvalidKey)).toBe(true);
    expect((err as Error).message).toBe('X25519 public key encoding: expected a X25519 key, got Ed25519');
  });

  it('never prints a secret key', () => {
    const kp = generateX25519KeyPair();
    const fp = kp.publicKey.fingerprint();
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(kp)).toBe(
      `{"publicKey":"X25519PublicKey(${fp})","secretKey":"X25519SecretKey(public ${fp})"}`,
    );
    expect(inspect(kp.secretKey)).toBe(`X25519SecretKey(public ${fp})`);
    expect(String(kp.secretKey)).toBe(`X25519SecretKey(public ${fp})`);
  });

  it('signs and verifies; a flipped bit fails', () => {
    const id = generateIdentityKeyPair();
    const msg = new TextEncoder().encode('hello');
    const sig = sign(id, msg);
    expect(verify(id.publicKey, msg, sig)).toBe(true);
    sig[0]! ^= 1;
    expect(verify(id.publicKey, msg, sig)).toBe(false);
  });

  it('agrees on X25519 and refuses an all-zero result', () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    expect(x25519(a.secretKey, b.publicKey)).toEqual(x25519(b.secretKey, a.publicKey));
    expect(() => x25519(a.secretKey, new X25519PublicKey(new Uint8Array(32)))).toThrow(
      'x25519: the shared secret is all zero (low-order or non-contributory public key)',
    );
  });
});
