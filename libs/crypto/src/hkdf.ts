/**
 * HMAC-SHA-256 (RFC 2104) from libsodium, and HKDF-SHA-256 (RFC 5869) built on it.
 * libsodium's JS wrapper exposes no HKDF function, so the two steps of RFC 5869 §2 are written
 * out here in a dozen lines; HMAC itself is libsodium's `crypto_auth_hmacsha256`.
 */
import { assertBytes, concatBytes, wipe } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sodium } from './sodium.js';

export const SHA256_BYTES = 32;
/** RFC 5869 §2.3: L <= 255 * HashLen. */
export const HKDF_MAX_OUTPUT = 255 * SHA256_BYTES;

/** HMAC-SHA-256(key, data). Any key length (RFC 2104 §2: longer keys are hashed first). */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes(key, undefined, 'hmac key');
  assertBytes(data, undefined, 'hmac data');
  const s = sodium();
  // The one-shot call takes exactly 32-byte keys; the streaming API takes any length.
  if (key.length === s.crypto_auth_hmacsha256_KEYBYTES) return s.crypto_auth_hmacsha256(data, key);
  const state = s.crypto_auth_hmacsha256_init(key);
  s.crypto_auth_hmacsha256_update(state, data);
  return s.crypto_auth_hmacsha256_final(state);
}

/** RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zero bytes. */
export function hkdfExtract(salt: Uint8Array | undefined, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt && salt.length > 0 ? salt : new Uint8Array(SHA256_BYTES), ikm);
}

/** RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = first L octets of T(1)|T(2)|... */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertBytes(info, undefined, 'hkdf info');
  if (!Number.isInteger(length) || length < 0 || length > HKDF_MAX_OUTPUT) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `hkdf: output length must be an integer from 0 to ${HKDF_MAX_OUTPUT}, got ${length}`,
    );
  }
  const okm = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < length; i++) {
    const block = hmacSha256(prk, concatBytes(previous, info, Uint8Array.of(i)));
    okm.set(block.subarray(0, Math.min(SHA256_BYTES, length - offset)), offset);
    offset += SHA256_BYTES;
    wipe(previous);
    previous = block;
  }
  wipe(previous);
  return okm;
}

/** HKDF-SHA-256(IKM, salt, info, L): extract then expand; the PRK is wiped. */
export function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array | undefined,
  info: Uint8Array,
  length: number,
): Uint8Array {
  assertBytes(ikm, undefined, 'hkdf ikm');
  if (salt !== undefined) assertBytes(salt, undefined, 'hkdf salt');
  const prk = hkdfExtract(salt, ikm);
  try {
    return hkdfExpand(prk, info, length);
  } finally {
    wipe(prk);
  }
}
