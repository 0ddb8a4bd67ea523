/**
 * X25519 (RFC 7748 §5 and §6.1) behind one interface, chosen at `ready()` like AES-256-GCM:
 *  - node:crypto in Node: OpenSSL's native X25519, about three times libsodium's WASM per
 *    multiplication on the project's machines (docs/crypto.md has the figures);
 *  - libsodium (WASM) everywhere else: WebCrypto's X25519 is asynchronous and not in every
 *    browser, and the Double Ratchet needs it synchronously.
 * No other curve code: both backends are a thin adapter over a vetted implementation.
 *
 * What both backends guarantee, whatever the library underneath would accept:
 *  - the secret is clamped (§5 decodeScalar25519): bits 0-2 and 255 cleared, bit 254 set;
 *  - the public u-coordinate's top bit is masked (§5 decodeUCoordinate) and a non-canonical u
 *    (p <= u < 2^255) is taken mod p, as libsodium does;
 *  - an all-zero shared secret (a low-order or non-contributory public key) is refused with
 *    INVALID_KEY (§6.1: "check ... is not all zero"). Base-point multiplication never gives zero.
 * Input lengths are checked by the callers in keygen.ts, once for every backend.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Sodium } from './sodium.js';

export const X25519_SCALAR_BYTES = 32;
export const X25519_POINT_BYTES = 32;

export interface X25519Backend {
  /** 'node:crypto' or 'libsodium'. */
  readonly name: string;
  /** X25519(secret, public) (RFC 7748 §5); throws INVALID_KEY for an all-zero result. */
  scalarMult(secret: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** X25519(secret, 9): the public key of `secret`. */
  scalarMultBase(secret: Uint8Array): Uint8Array;
}

const zeroSharedSecret = () =>
  new CryptoError(
    CryptoErrorCode.InvalidKey,
    'x25519: the shared secret is all zero (low-order or non-contributory public key)',
  );

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/**
 * libsodium's `crypto_scalarmult` (ref10): clamps the scalar, masks the top bit of u, and fails
 * the call when the result is all zero (and, before computing, for its list of low-order points,
 * all of which give zero).
 */
export function createSodiumX25519(sodium: Sodium): X25519Backend {
  return {
    name: 'libsodium',
    scalarMult(secret, publicKey) {
      try {
        return sodium.crypto_scalarmult(secret, publicKey);
      } catch {
        throw zeroSharedSecret();
      }
    },
    scalarMultBase(secret) {
      return sodium.crypto_scalarmult_base(secret);
    },
  };
}

/**
 * The JSON Web Key of an X25519 key (RFC 8037 §2): `x` public, `d` private, base64url. A type
 * literal, not an interface, so that node's `JsonWebKey` (an index signature) accepts it.
 */
type X25519Jwk = {
  readonly kty: 'OKP';
  readonly crv: 'X25519';
  readonly x: string;
  readonly d?: string;
};

/** The slice of a node:crypto KeyObject this backend uses. */
export interface NodeKeyObjectX25519 {
  export(options: { format: 'jwk' }): { x?: string };
}

/**
 * The slice of node:crypto this backend uses, typed here so that the published declarations do
 * not pull in @types/node (a browser app compiles against them too).
 */
export interface NodeCryptoX25519 {
  createPrivateKey(options: { key: X25519Jwk; format: 'jwk' }): NodeKeyObjectX25519;
  createPublicKey(options: { key: X25519Jwk; format: 'jwk' }): NodeKeyObjectX25519;
  diffieHellman(options: { privateKey: NodeKeyObjectX25519; publicKey: NodeKeyObjectX25519 }): Uint8Array;
}

/** The KeyObject made from a secret array, and the clamped bytes it was made from. */
interface ImportedSecret {
  readonly key: NodeKeyObjectX25519;
  readonly clamped: Uint8Array;
}

/**
 * node:crypto's X25519 (OpenSSL's `ossl_x25519`). Raw keys become KeyObjects through JWK
 * (RFC 8037), the cheapest import Node 20 has: OpenSSL 3's DER decoders make PKCS#8 / SPKI
 * imports about ten times slower (docs/crypto.md). Node reads only `d` of a private JWK and
 * derives the public key itself (it still wants a string `x`, so `x` is left empty).
 *
 * Importing a private key costs as much as a multiplication (OpenSSL derives its public key), so
 * the KeyObject made from a secret array is kept beside that array, in a WeakMap keyed by the
 * array itself: a ratchet key pair is imported once, for its public key, and its two later
 * agreements reuse it. An entry dies with its array, and is used only while the array still
 * holds the bytes it was made from (compared in constant time), so a wiped or rewritten array
 * is imported afresh: the result is always a function of the bytes.
 *
 * The secret is clamped here (§5) before OpenSSL sees it (OpenSSL clamps too); base64url comes
 * from libsodium (`sodium_bin2base64`, constant time). The JWK string and the KeyObject hold the
 * secret until garbage collection: as everywhere in JavaScript, wiping is best effort.
 */
export function createNodeX25519(nodeCrypto: NodeCryptoX25519, sodium: Sodium): X25519Backend {
  const { createPrivateKey, createPublicKey, diffieHellman } = nodeCrypto;
  const base64url = sodium.base64_variants.URLSAFE_NO_PADDING;
  const imported = new WeakMap<Uint8Array, ImportedSecret>();

  const privateKey = (secret: Uint8Array): NodeKeyObjectX25519 => {
    // A copy (not `secret.slice()`, which is a view when `secret` is a node Buffer).
    const clamped = new Uint8Array(secret);
    clamped[0]! &= 248;
    clamped[31]! &= 127;
    clamped[31]! |= 64;
    const hit = imported.get(secret);
    if (hit && sodium.memcmp(hit.clamped, clamped)) {
      sodium.memzero(clamped);
      return hit.key;
    }
    if (hit) sodium.memzero(hit.clamped);
    const d = sodium.to_base64(clamped, base64url);
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', x: '', d }, format: 'jwk' });
    imported.set(secret, { key, clamped });
    return key;
  };
  // OpenSSL takes the 32 bytes as they are and masks bit 255 when it decodes u (§5), as libsodium.
  const publicKeyOf = (u: Uint8Array): NodeKeyObjectX25519 =>
    createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: sodium.to_base64(u, base64url) },
      format: 'jwk',
    });

  return {
    name: 'node:crypto',
    scalarMult(secret, publicKey) {
      const priv = privateKey(secret);
      const pub = publicKeyOf(publicKey);
      let shared: Uint8Array;
      try {
        // OpenSSL fails the derivation when the result is all zero (the only way it can fail on
        // two well-formed 32-byte keys).
        shared = diffieHellman({ privateKey: priv, publicKey: pub });
      } catch {
        throw zeroSharedSecret();
      }
      // A plain Uint8Array of our own, whatever buffer node returned; its copy is wiped.
      const out = new Uint8Array(X25519_POINT_BYTES);
      out.set(shared.subarray(0, X25519_POINT_BYTES));
      const complete = shared.length === X25519_POINT_BYTES;
      sodium.memzero(shared);
      if (!complete || isAllZero(out)) {
        sodium.memzero(out);
        throw zeroSharedSecret();
      }
      return out;
    },
    scalarMultBase(secret) {
      const x = privateKey(secret).export({ format: 'jwk' }).x;
      if (x === undefined) throw new Error('x25519: node:crypto exported no public key');
      return sodium.from_base64(x, base64url);
    },
  };
}

/** RFC 7748 §6.1's example: Alice's secret, Bob's public key and their shared secret. */
const RFC7748_6_1 = {
  aliceSecret: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  alicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};

/**
 * True when `backend` reproduces RFC 7748 §6.1's key agreement and refuses the all-zero point:
 * `ready()` keeps a platform backend only when it passes (a runtime that imitates node:crypto
 * only in part falls back to libsodium).
 */
export function passesX25519SelfTest(backend: X25519Backend, sodium: Sodium): boolean {
  const hex = (bytes: Uint8Array) => sodium.to_hex(bytes);
  const from = (h: string) => sodium.from_hex(h);
  try {
    const v = RFC7748_6_1;
    if (hex(backend.scalarMultBase(from(v.aliceSecret))) !== v.alicePublic) return false;
    if (hex(backend.scalarMult(from(v.aliceSecret), from(v.bobPublic))) !== v.shared) return false;
  } catch {
    return false;
  }
  try {
    backend.scalarMult(from(RFC7748_6_1.aliceSecret), new Uint8Array(X25519_POINT_BYTES));
    return false;
  } catch (err) {
    return CryptoError.is(err, CryptoErrorCode.InvalidKey);
  }
}

let current: X25519Backend | undefined;

/**
 * Called by `ready()`: node:crypto when in Node and it passes the self-test, libsodium otherwise.
 */
export async function loadDefaultX25519(sodium: Sodium): Promise<void> {
  if (current) return;
  const host = globalThis as { process?: { versions?: { node?: unknown } } };
  if (typeof host.process?.versions?.node === 'string') {
    try {
      // A computed specifier keeps browser bundlers from trying to resolve node:crypto.
      const specifier = 'node:crypto';
      const nodeCrypto = (await import(/* @vite-ignore */ specifier)) as NodeCryptoX25519;
      const candidate = createNodeX25519(nodeCrypto, sodium);
      if (passesX25519SelfTest(candidate, sodium)) current = candidate;
    } catch {
      // No usable node:crypto: libsodium below.
    }
  }
  current ??= createSodiumX25519(sodium);
}

/** The backend in use. */
export function x25519Backend(): X25519Backend {
  if (!current) {
    throw new CryptoError(CryptoErrorCode.NotReady, 'no X25519 backend: await ready() once before using it');
  }
  return current;
}

/** Replaces the backend (for tests, and for hosts that bring their own platform X25519). */
export function setX25519Backend(backend: X25519Backend): void {
  current = backend;
}
