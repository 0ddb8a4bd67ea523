/**
 * The two X25519 backends are interchangeable (fast-check, 1,000 runs each): on random secrets
 * and random 32-byte public values (points on the curve or its twist, non-canonical u, the top bit
 * set or not) node:crypto and libsodium give the same bytes or both refuse with INVALID_KEY; they
 * derive the same public key; and for every encoding of every low-order point both refuse with
 * INVALID_KEY and the exact message (RFC 7748 §6.1). Agreement is checked both ways: the secret
 * arrays are reused across calls, so the node:crypto backend's KeyObject reuse is exercised too.
 */
import * as nodeCrypto from 'node:crypto';
import fc from 'fast-check';
import libsodium from 'libsodium-wrappers-sumo';
import {
  CryptoError,
  CryptoErrorCode,
  createNodeX25519,
  createSodiumX25519,
  fromHex,
  ready,
  toHex,
  type X25519Backend,
} from '../src/index.js';

const RUNS = 1000;
const ZERO_SHARED_MESSAGE =
  'x25519: the shared secret is all zero (low-order or non-contributory public key)';

/**
 * The points of order 1, 2, 4 and 8 (libsodium's list in x25519_ref10.c): u = 0, 1, the two of
 * order 8, p - 1; then p and p + 1, the non-canonical encodings of 0 and 1. Each also with the
 * top bit set, which RFC 7748 §5 masks: 14 encodings in all.
 */
const LOW_ORDER_CANONICAL = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
const LOW_ORDER = LOW_ORDER_CANONICAL.flatMap((hex) => {
  const topBit = fromHex(hex);
  topBit[31]! |= 0x80;
  return [hex, toHex(topBit)];
});

let node: X25519Backend;
let sodium: X25519Backend;

beforeAll(async () => {
  await ready();
  await libsodium.ready;
  node = createNodeX25519(nodeCrypto, libsodium);
  sodium = createSodiumX25519(libsodium);
});

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** The outcome of a call: the hex of its bytes, or the code and message of its CryptoError. */
function outcome(fn: () => Uint8Array): string {
  try {
    return toHex(fn());
  } catch (err) {
    if (CryptoError.is(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}

describe('X25519: node:crypto and libsodium agree', () => {
  it('on random secrets and random 32-byte public values', () => {
    let refused = 0;
    fc.assert(
      fc.property(
        bytes32,
        fc.oneof(
          bytes32,
          // An honest public key, sometimes with the top bit set (masked, RFC 7748 §5).
          fc.tuple(bytes32, fc.boolean()).map(([secret, top]) => {
            const pub = sodium.scalarMultBase(secret);
            if (top) pub[31]! |= 0x80;
            return pub;
          }),
          fc.constantFrom(...LOW_ORDER).map(fromHex),
        ),
        (secret, publicKey) => {
          const a = outcome(() => node.scalarMult(secret, publicKey));
          const b = outcome(() => sodium.scalarMult(secret, publicKey));
          expect(a).toBe(b);
          // The same arrays again, in the other order (node:crypto now reuses its KeyObject).
          expect(outcome(() => sodium.scalarMult(secret, publicKey))).toBe(a);
          expect(outcome(() => node.scalarMult(secret, publicKey))).toBe(a);
          if (a.startsWith(CryptoErrorCode.InvalidKey)) refused++;
        },
      ),
      { numRuns: RUNS },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('on the public key of random secrets (scalarMultBase), and both sides of an agreement', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (a, b) => {
        const pubA = node.scalarMultBase(a);
        expect(toHex(pubA)).toBe(toHex(sodium.scalarMultBase(a)));
        const pubB = sodium.scalarMultBase(b);
        expect(toHex(node.scalarMultBase(b))).toBe(toHex(pubB));
        expect(toHex(node.scalarMult(a, pubB))).toBe(toHex(sodium.scalarMult(b, pubA)));
      }),
      { numRuns: RUNS },
    );
  });

  it('on every encoding of every low-order point: refused with INVALID_KEY and the exact message', () => {
    expect(LOW_ORDER).toHaveLength(14);
    fc.assert(
      fc.property(bytes32, fc.constantFrom(...LOW_ORDER), (secret, hex) => {
        for (const backend of [node, sodium]) {
          expect(outcome(() => backend.scalarMult(secret, fromHex(hex)))).toBe(
            `${CryptoErrorCode.InvalidKey}: ${ZERO_SHARED_MESSAGE}`,
          );
        }
      }),
      { numRuns: RUNS },
    );
  });
});
