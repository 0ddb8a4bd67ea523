/**
 * The Double Ratchet's wire message: `version (1) | encrypted header | ciphertext | tag`.
 * The encrypted header (Signal spec §4 HENCRYPT) has a fixed size, so the split needs no length
 * field. The body's associated data is `AD | version | encrypted header | context` (spec §3.4
 * ENCRYPT(mk, plaintext, CONCAT(AD, enc_header)), with the version byte bound too, and the
 * caller's per-message context: the client binds the envelope's message id there, so a relay that
 * rewrites the id makes the message fail authentication instead of decrypting under a false id).
 * The encrypted header has a fixed size, so the concatenation is unambiguous.
 */
import { GCM_TAG_BYTES } from '../aes-gcm.js';
import { assertBytes, concatBytes } from '../bytes.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';
import { SEALED_HEADER_BYTES } from './header.js';

/** Version byte of ratchet messages. */
export const RATCHET_MESSAGE_VERSION = 1;
/** Bytes a ratchet message adds to its plaintext. */
export const RATCHET_MESSAGE_OVERHEAD = 1 + SEALED_HEADER_BYTES + GCM_TAG_BYTES;

export interface RatchetMessageParts {
  readonly encryptedHeader: Uint8Array;
  readonly body: Uint8Array;
}

export function encodeRatchetMessage(encryptedHeader: Uint8Array, body: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(RATCHET_MESSAGE_VERSION), encryptedHeader, body);
}

export function decodeRatchetMessage(message: Uint8Array): RatchetMessageParts {
  assertBytes(message, undefined, 'ratchet message');
  if (message.length < RATCHET_MESSAGE_OVERHEAD) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `ratchet message: expected at least ${RATCHET_MESSAGE_OVERHEAD} bytes, got ${message.length}`,
    );
  }
  if (message[0] !== RATCHET_MESSAGE_VERSION) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `ratchet message: expected version ${RATCHET_MESSAGE_VERSION}, got ${message[0]}`,
    );
  }
  return {
    encryptedHeader: message.subarray(1, 1 + SEALED_HEADER_BYTES),
    body: message.subarray(1 + SEALED_HEADER_BYTES),
  };
}

/** AD of the body: the session's AD, the version byte, the encrypted header and the context. */
export function bodyAssociatedData(
  ad: Uint8Array,
  encryptedHeader: Uint8Array,
  context: Uint8Array = EMPTY,
): Uint8Array {
  return concatBytes(ad, Uint8Array.of(RATCHET_MESSAGE_VERSION), encryptedHeader, context);
}

const EMPTY = new Uint8Array(0);
