/**
 * The envelope: everything the relay sees of a message (docs/protocol.md, "Envelope").
 *
 *   offset  size  field
 *   0       1     version            ENVELOPE_VERSION (1)
 *   1       16    message id         128 random bits (message-id.ts)
 *   17      32    recipient key      the recipient's Ed25519 identity key
 *   49      4     recipient device   u32 BE, 1..2^32-1
 *   53      4     ciphertext length  u32 BE, MIN_ENVELOPE_CIPHERTEXT_BYTES..MAX_ENVELOPE_CIPHERTEXT_BYTES
 *   57      n     ciphertext         opaque to the relay
 *
 * What is deliberately absent:
 * - The sender. The relay knows who sent an envelope from the authenticated socket and stamps
 *   that address on delivery (events.ts `MailItem.sender`); a sender field here would be a
 *   claim the relay must check anyway. The sender's identity the recipient trusts comes from
 *   the session (inside the ciphertext), not from the relay's stamp.
 * - A message type (session-setup vs ratchet message vs receipt). Routing does not need it, and
 *   it would tell the relay when sessions start and which messages are receipts. The kind lives
 *   inside the ciphertext (the session layer's own prefix, then application/).
 * - A timestamp or TTL: the relay stamps its receive time; expiry is relay policy.
 *
 * The ciphertext length is explicit although the frame has a length: a decoder checks a claimed
 * length against the limit and against the bytes present before copying anything, and a
 * truncated or extended envelope is refused rather than silently re-framed.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { type Address, checkAddress, readAddress } from '../address/address.js';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import {
  ADDRESS_BYTES,
  MAX_ENVELOPE_CIPHERTEXT_BYTES,
  MESSAGE_ID_BYTES,
  MIN_ENVELOPE_CIPHERTEXT_BYTES,
} from '../limits.js';
import { checkMessageId } from './message-id.js';

/** The only envelope version this implementation speaks. */
export const ENVELOPE_VERSION = 1;

/** Bytes before the ciphertext: version, id, recipient, ciphertext length. */
export const ENVELOPE_HEADER_BYTES = 1 + MESSAGE_ID_BYTES + ADDRESS_BYTES + 4;

/** The largest encoded envelope. */
export const MAX_ENVELOPE_BYTES = ENVELOPE_HEADER_BYTES + MAX_ENVELOPE_CIPHERTEXT_BYTES;

/** A decoded envelope. Plain data; the byte fields are copies owned by the caller. */
export interface Envelope {
  /** 16 random bytes (generateMessageId). */
  readonly id: Uint8Array;
  readonly recipient: Address;
  /** The session's ciphertext of the padded application payload. */
  readonly ciphertext: Uint8Array;
}

/**
 * Encodes an envelope; throws MALFORMED / TOO_LARGE on an invalid field.
 *
 * @example
 * const bytes = encodeEnvelope({ id: generateMessageId(), recipient: addressOf(bob), ciphertext });
 * socket.emit('send', { envelopes: [bytes] }, onReply);
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  checkMessageId(envelope.id, 'envelope id');
  checkAddress(envelope.recipient, 'envelope recipient');
  assertUint8Array(envelope.ciphertext, 'envelope ciphertext');
  checkCiphertextLength(envelope.ciphertext.length);
  return new BinaryWriter(ENVELOPE_HEADER_BYTES + envelope.ciphertext.length)
    .u8(ENVELOPE_VERSION)
    .bytes(envelope.id)
    .bytes(envelope.recipient.identityKey)
    .u32(envelope.recipient.deviceId)
    .u32(envelope.ciphertext.length)
    .bytes(envelope.ciphertext)
    .finish();
}

/**
 * Decodes an envelope strictly. Throws ProtocolError only: TOO_LARGE (input or claimed
 * ciphertext over the limit), UNSUPPORTED_VERSION, or MALFORMED (truncated, trailing bytes,
 * device id 0, ciphertext too short). Nothing is allocated before the lengths are checked.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  assertUint8Array(bytes, 'envelope');
  assertMaxLength(bytes.length, MAX_ENVELOPE_BYTES, 'envelope');
  const reader = new BinaryReader(bytes, 'envelope');
  const version = reader.u8('version');
  if (version !== ENVELOPE_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `envelope: version ${version} is not supported (expected ${ENVELOPE_VERSION})`,
    );
  }
  const id = reader.fixed(MESSAGE_ID_BYTES, 'message id');
  const recipient = readAddress(reader, 'recipient');
  const length = reader.u32('ciphertext length');
  checkCiphertextLength(length);
  const ciphertext = reader.fixed(length, 'ciphertext');
  reader.end();
  return { id, recipient, ciphertext };
}

/**
 * Reads only the fields the relay routes on (version, id, recipient) and checks the total length,
 * without copying the ciphertext: the relay stores the envelope's bytes as they came.
 */
export function peekEnvelopeRoute(bytes: Uint8Array): { id: Uint8Array; recipient: Address } {
  assertUint8Array(bytes, 'envelope');
  assertMaxLength(bytes.length, MAX_ENVELOPE_BYTES, 'envelope');
  const reader = new BinaryReader(
    bytes.subarray(0, Math.min(bytes.length, ENVELOPE_HEADER_BYTES)),
    'envelope',
  );
  const version = reader.u8('version');
  if (version !== ENVELOPE_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `envelope: version ${version} is not supported (expected ${ENVELOPE_VERSION})`,
    );
  }
  const id = reader.fixed(MESSAGE_ID_BYTES, 'message id');
  const recipient = readAddress(reader, 'recipient');
  const length = reader.u32('ciphertext length');
  checkCiphertextLength(length);
  if (bytes.length !== ENVELOPE_HEADER_BYTES + length) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `envelope: ciphertext length says ${length} bytes, ${bytes.length - ENVELOPE_HEADER_BYTES} present`,
    );
  }
  return { id, recipient };
}

function checkCiphertextLength(length: number): void {
  if (length > MAX_ENVELOPE_CIPHERTEXT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `envelope: ciphertext of ${length} bytes, the limit is ${MAX_ENVELOPE_CIPHERTEXT_BYTES}`,
    );
  }
  if (length < MIN_ENVELOPE_CIPHERTEXT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `envelope: ciphertext of ${length} bytes, the minimum is ${MIN_ENVELOPE_CIPHERTEXT_BYTES}`,
    );
  }
}
