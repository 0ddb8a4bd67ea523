/**
 * The X25519 backends' contract beyond the known-answer vectors (test/wycheproof.spec.ts runs
 * every Wycheproof vector on both): which backend `ready()` picks, the self-test that guards the
 * pick, the node:crypto backend's KeyObject reuse, and that the library routes through the backend.
 */
import * as nodeCrypto from 'node:crypto';
import libsodium from 'libsodium-wrappers-sumo';
import {
  CryptoError,
  CryptoErrorCode,
  X25519PublicKey,
  createNodeX25519,
  createSodiumX25519,
  fromHex,
  generateX25519KeyPair,
  ready,
  setX25519Backend,
  toHex,
  x25519,
  x25519Backend,
  x25519KeyPairFromSecret,
  x25519Raw,
  type X25519Backend,
} from './index.js';
import { passesX25519SelfTest } from './x25519.js';

/** RFC 7748 §6.1. */
const ALICE_SECRET = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const BOB_PUBLIC = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

let sodiumBackend: X25519Backend;
let nodeBackend: X25519Backend;
let defaultBackend: X25519Backend;

beforeAll(async () => {
  await ready();
  await libsodium.ready;
  defaultBackend = x25519Backend();
  sodiumBackend = createSodiumX25519(libsodium);
  nodeBackend = createNodeX25519(nodeCrypto, libsodium);
});

afterEach(() => setX25519Backend(defaultBackend));

describe('X25519 backends', () => {
  it('ready() picks node:crypto in Node', () => {
    expect(defaultBackend.name).toBe('node:crypto');
    expect(sodiumBackend.name).toBe('libsodium');
  });

  it('the self-test passes both real backends and fails a wrong or permissive one', () => {
    expect(passesX25519SelfTest(nodeBackend, libsodium)).toBe(true);
    expect(passesX25519SelfTest(sodiumBackend, libsodium)).toBe(true);
    const wrong: X25519Backend = {
      name: 'wrong',
      scalarMult: (s, p) => sodiumBackend.scalarMult(s, p).map((b) => b ^ 1),
      scalarMultBase: (s) => sodiumBackend.scalarMultBase(s),
    };
    const permissive: X25519Backend = {
      name: 'permissive',
      scalarMult: () => new Uint8Array(32),
      scalarMultBase: (s) => sodiumBackend.scalarMultBase(s),
    };
    const refusesAll: X25519Backend = {
      name: 'refuses all',
      scalarMult: () => {
        throw new CryptoError(CryptoErrorCode.InvalidKey, 'no');
      },
      scalarMultBase: (s) => sodiumBackend.scalarMultBase(s),
    };
    expect(passesX25519SelfTest(wrong, libsodium)).toBe(false);
    expect(passesX25519SelfTest(permissive, libsodium)).toBe(false);
    expect(passesX25519SelfTest(refusesAll, libsodium)).toBe(false);
  });

  it('x25519Raw, x25519 and x25519KeyPairFromSecret go through the backend in use', () => {
    const calls: string[] = [];
    setX25519Backend({
      name: 'recording',
      scalarMult: (s, p) => (calls.push('scalarMult'), sodiumBackend.scalarMult(s, p)),
      scalarMultBase: (s) => (calls.push('scalarMultBase'), sodiumBackend.scalarMultBase(s)),
    });
    expect(toHex(x25519Raw(ALICE_SECRET, BOB_PUBLIC))).toBe(SHARED);
    const alice = x25519KeyPairFromSecret(ALICE_SECRET.slice());
    const bob = generateX25519KeyPair();
    expect(toHex(x25519(alice.secretKey, new X25519PublicKey(BOB_PUBLIC)))).toBe(SHARED);
    x25519(bob.secretKey, alice.publicKey);
    expect(calls).toEqual(['scalarMult', 'scalarMultBase', 'scalarMultBase', 'scalarMult', 'scalarMult']);
  });

  describe.each([
    ['node:crypto', () => nodeBackend],
    ['libsodium', () => sodiumBackend],
  ] as const)('%s', (_name, backend) => {
    it('refuses the all-zero public key with INVALID_KEY and the exact message', () => {
      expect(() => backend().scalarMult(ALICE_SECRET, new Uint8Array(32))).toThrow(
        'x25519: the shared secret is all zero (low-order or non-contributory public key)',
      );
      let caught: unknown;
      try {
        backend().scalarMult(ALICE_SECRET, new Uint8Array(32));
      } catch (err) {
        caught = err;
      }
      expect(CryptoError.is(caught, CryptoErrorCode.InvalidKey)).toBe(true);
    });

    it('leaves its inputs untouched, a node Buffer included (clamping works on a copy)', () => {
      const secret = Buffer.from('ff'.repeat(32), 'hex');
      const peer = Buffer.from(BOB_PUBLIC);
      backend().scalarMult(secret, peer);
      backend().scalarMultBase(secret);
      expect(secret.toString('hex')).toBe('ff'.repeat(32));
      expect(toHex(peer)).toBe(toHex(BOB_PUBLIC));
    });

    it('returns a plain 32-byte Uint8Array that owns its buffer', () => {
      const shared = backend().scalarMult(ALICE_SECRET, BOB_PUBLIC);
      const pub = backend().scalarMultBase(ALICE_SECRET);
      for (const out of [shared, pub]) {
        expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
        expect(out.buffer.byteLength).toBe(32);
      }
    });
  });

  it('node:crypto: a reused secret array gives the result of its current bytes (wiped or changed)', () => {
    const secret = ALICE_SECRET.slice();
    expect(toHex(nodeBackend.scalarMult(secret, BOB_PUBLIC))).toBe(SHARED);
    expect(toHex(nodeBackend.scalarMult(secret, BOB_PUBLIC))).toBe(SHARED); // the kept KeyObject
    secret[7]! ^= 0x10;
    const changed = nodeBackend.scalarMult(secret, BOB_PUBLIC);
    expect(toHex(changed)).not.toBe(SHARED);
    expect(toHex(changed)).toBe(toHex(sodiumBackend.scalarMult(secret, BOB_PUBLIC)));
    secret.fill(0); // as wipe() leaves it
    expect(toHex(nodeBackend.scalarMultBase(secret))).toBe(toHex(sodiumBackend.scalarMultBase(secret)));
    expect(toHex(nodeBackend.scalarMult(secret, BOB_PUBLIC))).toBe(
      toHex(sodiumBackend.scalarMult(secret, BOB_PUBLIC)),
    );
  });

  it('node:crypto: only the bits clamping keeps matter, as in libsodium (RFC 7748 §5)', () => {
    const secret = ALICE_SECRET.slice();
    const flipped = secret.slice();
    flipped[0]! ^= 0x07; // bits 0-2: cleared by clamping
    flipped[31]! ^= 0xc0; // bits 254 and 255: set and cleared by clamping
    expect(toHex(nodeBackend.scalarMult(flipped, BOB_PUBLIC))).toBe(SHARED);
    expect(toHex(sodiumBackend.scalarMult(flipped, BOB_PUBLIC))).toBe(SHARED);
    expect(toHex(nodeBackend.scalarMultBase(flipped))).toBe(toHex(sodiumBackend.scalarMultBase(secret)));
  });
});
