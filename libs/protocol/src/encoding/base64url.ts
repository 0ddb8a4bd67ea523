/**
 * base64url without padding (RFC 4648 §5), strict: the decoder accepts exactly the strings the
 * encoder produces (no padding, no whitespace, no '+' or '/', zero bits in the unused low bits
 * of the last character), so every value has one string form. It is used for addresses and
 * message ids in socket payloads and database keys. Pure JavaScript: no Buffer, so it runs in
 * browsers too, and no libsodium, so it works before `ready()`.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** The unpadded base64url length of `byteLength` bytes. */
export function base64urlLength(byteLength: number): number {
  return Math.ceil((byteLength * 4) / 3);
}

export function toBase64url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes canonical unpadded base64url of exactly `byteLength` bytes. The length is checked
 * before anything is allocated; errors are MALFORMED and name `field`, never the content.
 */
export function fromBase64url(text: string, byteLength: number, field: string): Uint8Array {
  const chars = base64urlLength(byteLength);
  if (text.length !== chars) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${field}: expected ${chars} base64url characters, got ${text.length}`,
    );
  }
  const out = new Uint8Array(byteLength);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) {
      throw new ProtocolError(
        ProtocolErrorCode.Malformed,
        `${field}: character ${i} is not in the base64url alphabet`,
      );
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o < byteLength) out[o++] = (acc >>> bits) & 0xff;
    }
  }
  // The bits left over belong to no byte: a canonical encoding leaves them zero.
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${field}: not a canonical base64url encoding`);
  }
  return out;
}
