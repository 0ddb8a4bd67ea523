/**
 * Byte helpers shared by every primitive: input checks (as in noble-hashes' `abytes`),
 * concatenation, big-endian integers, hex for public values, and best-effort wiping.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sodium } from './sodium.js';

/** Throws MALFORMED_INPUT unless `value` is a Uint8Array (of `length` bytes when given). */
export function assertBytes(
  value: unknown,
  length: number | undefined,
  name: string,
): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `${name}: expected a Uint8Array, got ${describe(value)}`,
    );
  }
  if (length !== undefined && value.length !== length) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `${name}: expected ${length} bytes, got ${value.length}`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** 4-byte big-endian encoding of an unsigned 32-bit integer. */
export function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** Constant-time equality of two byte strings of equal length (libsodium's `sodium_memcmp`). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium().memcmp(a, b);
}

/** Overwrites secrets with zeros (`sodium_memzero`). Best effort: JavaScript may have copied them. */
export function wipe(...secrets: (Uint8Array | undefined)[]): void {
  const s = sodium();
  for (const secret of secrets) if (secret) s.memzero(secret);
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `hex: expected an even number of hex digits, got ${hex.length} characters`,
    );
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Cryptographically secure random bytes from the platform CSPRNG, `crypto.getRandomValues`
 * (Node 20 and browsers; libsodium's WASM build draws from the same source). Called directly
 * because libsodium's `randombytes_buf` makes one JavaScript round trip per byte: about 3 µs a
 * byte on the benchmark machine, which dominated a DH ratchet turn.
 */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `randomBytes: expected a byte count, got ${length}`,
    );
  }
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65,536 bytes per call (WebCrypto §10.1.1).
  for (let offset = 0; offset < length; offset += 65_536) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65_536)));
  }
  return out;
}
