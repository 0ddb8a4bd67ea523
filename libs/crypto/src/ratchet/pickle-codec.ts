/**
 * A minimal length-checked binary writer and reader for pickles. Every read checks the bytes
 * are there; a reader that ends with bytes left over refuses the pickle. Errors are BAD_PICKLE
 * and name the field, never its content.
 */
import { concatBytes, u32be } from '../bytes.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';

export class PickleWriter {
  readonly #parts: Uint8Array[] = [];

  u8(n: number): this {
    this.#parts.push(Uint8Array.of(n));
    return this;
  }
  u16(n: number): this {
    this.#parts.push(Uint8Array.of(n >>> 8, n & 0xff));
    return this;
  }
  u32(n: number): this {
    this.#parts.push(u32be(n));
    return this;
  }
  /** Fixed-length bytes (the reader knows the length). */
  fixed(bytes: Uint8Array): this {
    this.#parts.push(bytes);
    return this;
  }
  /** Length-prefixed (u16) bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u16(bytes.length).fixed(bytes);
  }
  /** A presence byte, then the fixed-length bytes when present. */
  optional(bytes: Uint8Array | undefined): this {
    return bytes ? this.u8(1).fixed(bytes) : this.u8(0);
  }
  finish(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}

export class PickleReader {
  #offset = 0;

  constructor(private readonly data: Uint8Array) {}

  #take(length: number, field: string): Uint8Array {
    if (this.#offset + length > this.data.length) {
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        `pickle: truncated at ${field} (needs ${length} bytes at offset ${this.#offset}, ${this.data.length - this.#offset} left)`,
      );
    }
    const out = this.data.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
  u8(field: string): number {
    return this.#take(1, field)[0]!;
  }
  u16(field: string): number {
    const b = this.#take(2, field);
    return (b[0]! << 8) | b[1]!;
  }
  u32(field: string): number {
    const b = this.#take(4, field);
    return new DataView(b.buffer).getUint32(0, false);
  }
  fixed(length: number, field: string): Uint8Array {
    return this.#take(length, field);
  }
  bytes(field: string): Uint8Array {
    return this.#take(this.u16(`${field} length`), field);
  }
  optional(length: number, field: string): Uint8Array | undefined {
    const flag = this.u8(`${field} presence`);
    if (flag > 1)
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        `pickle: ${field} presence byte must be 0 or 1, got ${flag}`,
      );
    return flag === 1 ? this.#take(length, field) : undefined;
  }
  end(): void {
    if (this.#offset !== this.data.length) {
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        `pickle: ${this.data.length - this.#offset} unexpected bytes after the end`,
      );
    }
  }
}
