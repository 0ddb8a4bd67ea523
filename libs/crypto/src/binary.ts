/**
 * The one length-checked, big-endian binary reader and writer of the repository. Pickles (here)
 * and the protocol's wire formats (@usm/protocol) use it, each throwing its own error type: the
 * caller passes a `BinaryFailure` that turns a failed check into that error.
 *
 * The reader never allocates before it has checked that the bytes are there: every read names its
 * field, a length prefix is compared with its limit and with the bytes left before anything is
 * copied, and `end()` refuses trailing bytes. Reads return copies, so a decoded value never
 * aliases a buffer that may be reused. Messages name the field and the lengths, never a byte of
 * content.
 */

/** What went wrong: bytes missing, a length over its limit, bytes left over, or a bad value. */
export type BinaryFault = 'truncated' | 'too-large' | 'trailing' | 'invalid';

/** Builds the error a reader throws (a ProtocolError, a CryptoError...). */
export type BinaryFailure = (fault: BinaryFault, message: string) => Error;

export class BinaryReader {
  #offset = 0;
  readonly #view: DataView;

  constructor(
    private readonly data: Uint8Array,
    /** Prefix of every error message, e.g. 'envelope'. */
    private readonly what: string,
    private readonly fail: BinaryFailure,
  ) {
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get remaining(): number {
    return this.data.length - this.#offset;
  }

  #need(length: number, field: string): number {
    if (length > this.remaining) {
      throw this.fail(
        'truncated',
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

  /** A u64 that must fit in a JavaScript safe integer (2^53 - 1); larger is 'invalid'. */
  u64(field: string): number {
    const at = this.#need(8, field);
    const high = this.#view.getUint32(at, false);
    const low = this.#view.getUint32(at + 4, false);
    if (high > 0x1f_ffff) throw this.fail('invalid', `${this.what}: ${field} exceeds 2^53 - 1`);
    return high * 0x1_0000_0000 + low;
  }

  /** An IEEE 754 double. */
  f64(field: string): number {
    return this.#view.getFloat64(this.#need(8, field), false);
  }

  /** `length` bytes, copied. */
  fixed(length: number, field: string): Uint8Array {
    const at = this.#need(length, field);
    return this.data.slice(at, at + length);
  }

  /**
   * A length-prefixed field whose prefix (already read by the caller) is checked against `max`
   * ('too-large') and the bytes left ('truncated') before the copy.
   */
  bounded(length: number, max: number, field: string): Uint8Array {
    if (length > max) {
      throw this.fail('too-large', `${this.what}: ${field} claims ${length} bytes, the limit is ${max}`);
    }
    return this.fixed(length, field);
  }

  /** A presence byte (0 or 1), then `length` bytes when present. */
  optional(length: number, field: string): Uint8Array | undefined {
    const flag = this.u8(`${field} presence`);
    if (flag > 1)
      throw this.fail('invalid', `${this.what}: ${field} presence byte must be 0 or 1, got ${flag}`);
    return flag === 1 ? this.fixed(length, field) : undefined;
  }

  /** Refuses bytes after the last field. */
  end(): void {
    if (this.remaining !== 0) {
      throw this.fail('trailing', `${this.what}: ${this.remaining} unexpected bytes after the end`);
    }
  }
}

/**
 * Builds a message. With a size computed up front it writes into one buffer of that size and
 * `finish()` checks the size was right; without one it grows as it goes.
 */
export class BinaryWriter {
  #offset = 0;
  #out: Uint8Array;
  #view: DataView;
  readonly #fixedSize: boolean;

  constructor(size?: number) {
    this.#fixedSize = size !== undefined;
    this.#out = new Uint8Array(size ?? 256);
    this.#view = new DataView(this.#out.buffer);
  }

  #room(length: number): number {
    const at = this.#offset;
    if (!this.#fixedSize && at + length > this.#out.length) {
      const grown = new Uint8Array(Math.max(2 * this.#out.length, at + length));
      grown.set(this.#out.subarray(0, at));
      this.#out = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#offset += length;
    return at;
  }

  // Each method takes its room first: #room may replace #out and #view with a larger buffer.
  u8(n: number): this {
    const at = this.#room(1);
    this.#view.setUint8(at, n);
    return this;
  }

  u16(n: number): this {
    const at = this.#room(2);
    this.#view.setUint16(at, n, false);
    return this;
  }

  u32(n: number): this {
    const at = this.#room(4);
    this.#view.setUint32(at, n, false);
    return this;
  }

  /** A safe non-negative integer as u64. */
  u64(n: number): this {
    const at = this.#room(8);
    this.#view.setUint32(at, Math.floor(n / 0x1_0000_0000), false);
    this.#view.setUint32(at + 4, n >>> 0, false);
    return this;
  }

  /** An IEEE 754 double. */
  f64(n: number): this {
    const at = this.#room(8);
    this.#view.setFloat64(at, n, false);
    return this;
  }

  bytes(bytes: Uint8Array): this {
    const at = this.#room(bytes.length);
    this.#out.set(bytes, at);
    return this;
  }

  /** The bytes written; with a size given up front, throws if it was wrong (a bug, not an input error). */
  finish(): Uint8Array {
    if (!this.#fixedSize) return this.#out.slice(0, this.#offset);
    if (this.#offset !== this.#out.length) {
      throw new Error(`BinaryWriter: wrote ${this.#offset} of ${this.#out.length} bytes`);
    }
    return this.#out;
  }
}
