/**
 * Length hiding: plaintexts are padded up to a few bucket sizes before encryption, so the relay
 * (which sees every ciphertext length) learns only which of PADDING_BUCKETS a message falls in,
 * not its length. The padding is ISO/IEC 7816-4 (also ISO/IEC 9797-1 padding method 2): one 0x80
 * byte, then zeros up to the bucket size. It is unambiguous for any content, so unpadding needs
 * no length field.
 *
 * Where it is applied: the client pads the encoded application payload (application/) and
 * encrypts the padded bytes with the ratchet; the receiver decrypts, then unpads. The ciphertext
 * is the bucket size plus the ratchet's fixed overhead, so envelope lengths land on buckets.
 * Padding ciphertext instead would be visible as padding, and padding after a MAC'd encryption
 * would be unauthenticated.
 *
 * `unpad` runs only on authenticated plaintext (after the AEAD tag verified), so its early exits
 * are no padding oracle.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { assertUint8Array } from '../encoding/binary-reader.js';
import { MAX_PADDED_PLAINTEXT_BYTES, MAX_UNPADDED_PLAINTEXT_BYTES, PADDING_BUCKETS } from '../limits.js';

/** The ISO/IEC 7816-4 padding marker. */
const PADDING_MARKER = 0x80;

/** The padded size of a plaintext of `length` bytes: the smallest bucket holding length + 1. */
export function paddedLength(length: number): number {
  if (!Number.isInteger(length) || length < 0) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'padding: length must be a non-negative integer');
  }
  for (const bucket of PADDING_BUCKETS) if (length + 1 <= bucket) return bucket;
  throw new ProtocolError(
    ProtocolErrorCode.TooLarge,
    `padding: ${length} bytes, the limit is ${MAX_UNPADDED_PLAINTEXT_BYTES}`,
  );
}

/**
 * `plaintext | 0x80 | 0x00...` up to the next bucket. Throws TOO_LARGE past
 * MAX_UNPADDED_PLAINTEXT_BYTES.
 *
 * @example
 * const padded = pad(encodeApplicationPayload(payload)); // 256, 1024, ... bytes
 * // encrypt `padded` with the session; on receipt: unpad(decrypted)
 */
export function pad(plaintext: Uint8Array): Uint8Array {
  assertUint8Array(plaintext, 'padding: plaintext');
  const out = new Uint8Array(paddedLength(plaintext.length));
  out.set(plaintext, 0);
  out[plaintext.length] = PADDING_MARKER;
  return out;
}

/**
 * Strips the padding, strictly: the input must be exactly one bucket long, and end in 0x80
 * followed only by zeros. Anything else is MALFORMED (TOO_LARGE past the largest bucket).
 * Returns a copy.
 */
export function unpad(padded: Uint8Array): Uint8Array {
  assertUint8Array(padded, 'padding: padded plaintext');
  if (padded.length > MAX_PADDED_PLAINTEXT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `padding: ${padded.length} bytes, the limit is ${MAX_PADDED_PLAINTEXT_BYTES}`,
    );
  }
  if (!PADDING_BUCKETS.includes(padded.length)) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `padding: ${padded.length} bytes is not a bucket size (${PADDING_BUCKETS.join(', ')})`,
    );
  }
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== PADDING_MARKER) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'padding: no 0x80 marker before the zeros');
  }
  const length = end;
  // The smallest bucket that holds the content must be this one: a larger one means the
  // padding was not made by `pad` (two encodings for one plaintext).
  if (paddedLength(length) !== padded.length) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `padding: ${length} bytes of content belong in a ${paddedLength(length)}-byte bucket, got ${padded.length}`,
    );
  }
  return padded.slice(0, length);
}
