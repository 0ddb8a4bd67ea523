/**
 * Message ids: 128 random bits chosen by the sender for each envelope. The relay stores and
 * deletes mail by id, and the recipient deduplicates by id (at-least-once on the wire,
 * exactly-once to the application). Random rather than sequential, so the id reveals nothing
 * about how many messages a sender has sent; 128 bits keep accidental collisions negligible.
 *
 * In socket payloads and database keys an id travels as canonical unpadded base64url
 * (22 characters), e.g. `q83vEjRWeJASNFZ4kBI0Vg`.
 */
import { randomBytes } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { fromBase64url, toBase64url } from '../encoding/base64url.js';
import { assertUint8Array } from '../encoding/binary-reader.js';
import { MESSAGE_ID_BYTES, MESSAGE_ID_STRING_CHARS } from '../limits.js';

/** A message id's string form, branded so that any string is not taken for one. */
export type MessageIdString = string & { readonly __brand: 'MessageIdString' };

/**
 * A fresh random message id (libsodium's `randombytes_buf`).
 * Needs the crypto core loaded: `await ready()` from @usm/crypto once at start-up.
 *
 * @example
 * import { ready } from '@usm/crypto';
 * await ready();
 * const id = generateMessageId(); // 16 random bytes
 */
export function generateMessageId(): Uint8Array {
  return randomBytes(MESSAGE_ID_BYTES);
}

/** Throws MALFORMED unless `id` is a Uint8Array of MESSAGE_ID_BYTES bytes. */
export function checkMessageId(id: unknown, what = 'message id'): asserts id is Uint8Array {
  assertUint8Array(id, what);
  if (id.length !== MESSAGE_ID_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected ${MESSAGE_ID_BYTES} bytes, got ${id.length}`,
    );
  }
}

export function formatMessageId(id: Uint8Array): MessageIdString {
  checkMessageId(id);
  return toBase64url(id) as MessageIdString;
}

/** Parses the canonical 22-character form; anything else is MALFORMED. */
export function parseMessageId(text: string, what = 'message id'): Uint8Array {
  if (typeof text !== 'string') {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: expected a string`);
  }
  if (text.length !== MESSAGE_ID_STRING_CHARS) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected ${MESSAGE_ID_STRING_CHARS} characters, got ${text.length}`,
    );
  }
  return fromBase64url(text, MESSAGE_ID_BYTES, what);
}

/** Checks that `text` is a canonical message id string and brands it. */
export function asMessageIdString(text: string, what = 'message id'): MessageIdString {
  parseMessageId(text, what);
  return text as MessageIdString;
}
