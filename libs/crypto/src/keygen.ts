/**
 * Key generation and the public-key operations:
 *  - Ed25519 identity keys (RFC 8032) on libsodium (WASM), signatures verified strictly;
 *  - X25519 Diffie-Hellman (RFC 7748 §6.1) with the all-zero output refused, on the backend
 *    `ready()` chose (x25519.ts: node:crypto in Node, libsodium elsewhere);
 *  - Ed25519 -> X25519 conversion (the birational map of RFC 7748 §4.1) where the protocol needs it.
 */
import { assertBytes, randomBytes } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import {
  IdentityPublicKey,
  KeyType,
  SECRET_KEY_BYTES,
  SecretKey,
  X25519PublicKey,
  decodeKey,
} from './keys.js';
import { sodium } from './sodium.js';
import { x25519Backend } from './x25519.js';

export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_SHARED_BYTES = 32;

/** A long-term Ed25519 identity. */
export interface IdentityKeyPair {
  readonly publicKey: IdentityPublicKey;
  readonly secretKey: SecretKey<KeyType.Ed25519>;
}

/** An X25519 key pair (ratchet keys, prekeys, handshake ephemerals). */
export interface X25519KeyPair {
  readonly publicKey: X25519PublicKey;
  readonly secretKey: SecretKey<KeyType.X25519>;
}

export function generateIdentityKeyPair(): IdentityKeyPair {
  const { publicKey, privateKey } = sodium().crypto_sign_keypair();
  return {
    publicKey: new IdentityPublicKey(publicKey),
    secretKey: new SecretKey(KeyType.Ed25519, privateKey, publicKey),
  };
}

/** A fresh X25519 key pair: 32 random bytes as the secret (clamped by X25519 itself, RFC 7748 §5). */
export function generateX25519KeyPair(): X25519KeyPair {
  return x25519KeyPairFromSecret(randomBytes(32));
}

/** Rebuilds an X25519 key pair from its secret (the public key is recomputed). */
export function x25519KeyPairFromSecret(secret: Uint8Array): X25519KeyPair {
  assertBytes(secret, 32, 'X25519 secret key');
  const publicKey = x25519Backend().scalarMultBase(secret);
  return {
    publicKey: new X25519PublicKey(publicKey),
    secretKey: new SecretKey(KeyType.X25519, secret, publicKey),
  };
}

/** Rebuilds an identity key pair from libsodium's 64-byte secret key (seed || public). */
export function identityKeyPairFromSecret(secret: Uint8Array): IdentityKeyPair {
  assertBytes(secret, 64, 'Ed25519 secret key');
  const publicKey = sodium().crypto_sign_ed25519_sk_to_pk(secret);
  return {
    publicKey: new IdentityPublicKey(publicKey),
    secretKey: new SecretKey(KeyType.Ed25519, secret, publicKey),
  };
}

/** Decodes `version | type | secret` (a pickled identity) into a key pair. */
export function decodeIdentityKeyPair(encoded: Uint8Array): IdentityKeyPair {
  return identityKeyPairFromSecret(decodeKey(encoded, KeyType.Ed25519, SECRET_KEY_BYTES, 'secret'));
}

/** Decodes `version | type | secret` (a pickled X25519 key) into a key pair. */
export function decodeX25519KeyPair(encoded: Uint8Array): X25519KeyPair {
  return x25519KeyPairFromSecret(decodeKey(encoded, KeyType.X25519, SECRET_KEY_BYTES, 'secret'));
}

/** Ed25519 signature (RFC 8032 §5.1.6) over `message`. */
export function sign(identity: IdentityKeyPair, message: Uint8Array): Uint8Array {
  assertBytes(message, undefined, 'message to sign');
  return sodium().crypto_sign_detached(message, identity.secretKey.bytes);
}

/**
 * Strict Ed25519 verification (RFC 8032 §5.1.7 plus libsodium's extra checks): S >= L,
 * non-canonical encodings of A and R, and small-order A or R are refused.
 * Returns false for a bad signature; throws MALFORMED_INPUT for a signature of the wrong length.
 */
export function verify(publicKey: IdentityPublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  assertBytes(message, undefined, 'signed message');
  assertBytes(signature, ED25519_SIGNATURE_BYTES, 'Ed25519 signature');
  return sodium().crypto_sign_verify_detached(signature, message, publicKey.bytes);
}

/** Like `verify`, but throws BAD_SIGNATURE, naming `what` was signed. */
export function assertSignature(
  publicKey: IdentityPublicKey,
  message: Uint8Array,
  signature: Uint8Array,
  what: string,
) {
  if (!verify(publicKey, message, signature)) {
    throw new CryptoError(
      CryptoErrorCode.BadSignature,
      `${what}: the Ed25519 signature does not verify for ${publicKey.fingerprint()}`,
    );
  }
}

/**
 * X25519(secret, public) (RFC 7748 §6.1). An all-zero result, which a low-order or
 * non-contributory public key forces, is refused with INVALID_KEY ("check ... is not all
 * zero", RFC 7748 §6.1; every backend does the check, see x25519.ts).
 */
export function x25519(secretKey: SecretKey<KeyType.X25519>, publicKey: X25519PublicKey): Uint8Array {
  return x25519Raw(secretKey.bytes, publicKey.bytes);
}

/** X25519 on raw bytes (for vectors and for code that holds raw keys). */
export function x25519Raw(secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
  assertBytes(secret, 32, 'X25519 secret key');
  assertBytes(publicKey, 32, 'X25519 public key');
  return x25519Backend().scalarMult(secret, publicKey);
}

/** Ed25519 public key -> X25519 public key (RFC 7748 §4.1 birational map). */
export function identityToX25519PublicKey(identity: IdentityPublicKey): X25519PublicKey {
  try {
    return new X25519PublicKey(sodium().crypto_sign_ed25519_pk_to_curve25519(identity.bytes));
  } catch {
    throw new CryptoError(
      CryptoErrorCode.InvalidKey,
      'ed25519->x25519: the identity key is not a valid Ed25519 point',
    );
  }
}

/** Ed25519 key pair -> X25519 key pair (the secret scalar is the clamped SHA-512 of the seed). */
export function identityToX25519KeyPair(identity: IdentityKeyPair): X25519KeyPair {
  const secret = sodium().crypto_sign_ed25519_sk_to_curve25519(identity.secretKey.bytes);
  return x25519KeyPairFromSecret(secret);
}
