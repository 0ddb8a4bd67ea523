/**
 * The protocol's binary formats on the one reader and writer of @usm/crypto (big-endian,
 * length-checked: see its doc comment). Here a failed check is a ProtocolError: a length over its
 * limit TOO_LARGE, anything else MALFORMED. Errors name the field and the lengths, never a byte
 * of content.
 */
import { BinaryReader as CoreReader, type BinaryFault, BinaryWriter } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

export { BinaryWriter };

const failure = (fault: BinaryFault, message: string): ProtocolError =>
  new ProtocolError(
    fault === 'too-large' ? ProtocolErrorCode.TooLarge : ProtocolErrorCode.Malformed,
    message,
  );

export class BinaryReader extends CoreReader {
  constructor(data: Uint8Array, what: string) {
    super(data, what, failure);
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
