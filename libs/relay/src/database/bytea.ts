/** bytea parameters and columns as pg binds and returns them. */

/** A Buffer view of the bytes, as pg binds bytea parameters. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain Uint8Array copy of a bytea column (pg may return slices of a shared pool). */
export function fromBuffer(buf: Buffer): Uint8Array {
  return new Uint8Array(buf);
}
