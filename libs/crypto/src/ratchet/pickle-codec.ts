/**
 * The pickles' binary layout on the shared reader and writer (../binary.ts): every read checks the
 * bytes are there; a reader that ends with bytes left over refuses the pickle. Errors are
 * BAD_PICKLE and name the field, never its content.
 */
import { BinaryReader, BinaryWriter } from '../binary.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';

export class PickleWriter {
  readonly #w = new BinaryWriter();

  u8(n: number): this {
    this.#w.u8(n);
    return this;
  }
  u16(n: number): this {
    this.#w.u16(n);
    return this;
  }
  u32(n: number): this {
    this.#w.u32(n);
    return this;
  }
  /** Fixed-length bytes (the reader knows the length). */
  fixed(bytes: Uint8Array): this {
    this.#w.bytes(bytes);
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
    return this.#w.finish();
  }
}

export class PickleReader extends BinaryReader {
  constructor(data: Uint8Array) {
    super(data, 'pickle', (_fault, message) => new CryptoError(CryptoErrorCode.BadPickle, message));
  }
  /** Length-prefixed (u16) bytes. */
  bytes(field: string): Uint8Array {
    return this.fixed(this.u16(`${field} length`), field);
  }
}
