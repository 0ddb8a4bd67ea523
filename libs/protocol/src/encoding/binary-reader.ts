/**
 * A minimal length-checked reader and writer for the protocol's binary formats (big-endian).
 *
 * The reader never allocates before it has checked that the bytes are there: every read names
 * its field, a length prefix is compared with its limit (TOO_LARGE) and with the bytes left
 * (MALFORMED) before anything is copied, and `end()` refuses trailing bytes. Reads return copies,
 * so a decoded value never aliases a socket buffer that may be reused. Errors name the field and
 * the lengths, never a byte of content.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

export class BinaryReader {
  #offset = 0;
  readonly #view: DataView;

  constructor(
    private readonly data: Uint8Array,
    /** Prefix of every error message, e.g. 'envelope'. */
    private readonly what: string,
  ) {
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get remaining(): number {
    return this.data.length - this.#offset;
  }

  #need(length: number, field: string): number {
    if (length > this.remaining) {
      throw new ProtocolError(
        ProtocolErrorCode.Malformed,
        `${this.what}: truncated at ${field} (needs ${length} bytes at offset ${this.#offset}, ${this.remaining} left)`,
      );
    }
    const at = this.#offset;
    this.#offset += length;
    return at;
  }

  u8(field: string): number {
    return this.#view.getUint8(this.#need(1, field));
  }

  u16(field: string): number {
    return this.#view.getUint16(this.#need(2, field), false);
  }

  u32(field: string): number {
    return this.#view.getUint32(this.#need(4, field), false);
  }

  /** A u64 that must fit in a JavaScript safe integer (2^53 - 1); larger is MALFORMED. */
  u64(field: string): number {
    const at = this.#need(8, field);
    const high = this.#view.getUint32(at, false);
    const low = this.#view.getUint32(at + 4, false);
    if (high > 0x1f_ffff) {
      throw new ProtocolError(ProtocolErrorCode.Malformed, `${this.what}: ${field} exceeds 2^53 - 1`);
    }
    return high * 0x1_0000_0000 + low;
  }

  /** `length` bytes, copied. */
  fixed(length: number, field: string): Uint8Array {
    const at = this.#need(length, field);
    return this.data.slice(at, at + length);
  }

  /**
   * A length-prefixed field whose prefix (already read by the caller) is checked against `max`
   * (TOO_LARGE) and the bytes left (MALFORMED) before the copy.
   */
  bounded(length: number, max: number, field: string): Uint8Array {
    if (length > max) {
      throw new ProtocolError(
        ProtocolErrorCode.TooLarge,
        `${this.what}: ${field} claims ${length} bytes, the limit is ${max}`,
      );
    }
    return this.fixed(length, field);
  }

  /** Refuses bytes after the last field. */
  end(): void {
    if (this.remaining !== 0) {
      throw new ProtocolError(
        ProtocolErrorCode.Malformed,
        `${this.what}: ${this.remaining} unexpected bytes after the end`,
      );
    }
  }
}

/** Builds a message into one buffer of a size computed up front. */
export class BinaryWriter {
  #offset = 0;
  readonly #out: Uint8Array;
  readonly #view: DataView;

  constructor(size: number) {
    this.#out = new Uint8Array(size);
    this.#view = new DataView(this.#out.buffer);
  }

  u8(n: number): this {
    this.#view.setUint8(this.#offset, n);
    this.#offset += 1;
    return this;
  }

  u16(n: number): this {
    this.#view.setUint16(this.#offset, n, false);
    this.#offset += 2;
    return this;
  }

  u32(n: number): this {
    this.#view.setUint32(this.#offset, n, false);
    this.#offset += 4;
    return this;
  }

  /** A safe non-negative integer as u64. */
  u64(n: number): this {
    this.#view.setUint32(this.#offset, Math.floor(n / 0x1_0000_0000), false);
    this.#view.setUint32(this.#offset + 4, n >>> 0, false);
    this.#offset += 8;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    this.#out.set(bytes, this.#offset);
    this.#offset += bytes.length;
    return this;
  }

  /** The buffer; throws if the size computed up front was wrong (a bug, not an input error). */
  finish(): Uint8Array {
    if (this.#offset !== this.#out.length) {
      throw new Error(`BinaryWriter: wrote ${this.#offset} of ${this.#out.length} bytes`);
    }
    return this.#out;
  }
}

/** Throws TOO_LARGE when `length` exceeds `max`: the first check of every decoder. */
export function assertMaxLength(length: number, max: number, what: string): void {
  if (length > max) {
    throw new ProtocolError(ProtocolErrorCode.TooLarge, `${what}: ${length} bytes, the limit is ${max}`);
  }
}

/** Throws MALFORMED unless `value` is a Uint8Array (Node's Buffer is one). */
export function assertUint8Array(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: expected a Uint8Array`);
  }
}
