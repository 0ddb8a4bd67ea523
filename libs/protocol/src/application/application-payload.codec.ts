/**
 * The application payload: what the client encrypts inside the ratchet (after padding, see
 * envelope/padding.ts). Only the two clients ever see it.
 *
 *   offset  size  field
 *   0       1     version     APPLICATION_PAYLOAD_VERSION (1)
 *   1       1     kind        PayloadKind
 *   2       4     sequence    u32 BE: the sender's per-conversation counter (ordering/)
 *   6       8     sentAt      u64 BE: sender clock, ms since the Unix epoch, <= 2^53 - 1
 *   14      ...   body, by kind:
 *     Text           u32 length | UTF-8 (well-formed, no BOM stripping)
 *     Bytes          u32 length | bytes
 *     DeliveryReceipt u16 count  | count x 16-byte message ids (1..MAX_RECEIPT_IDS)
 *     SessionReset   nothing
 *     any other kind the rest of the payload, not read (see below)
 *
 * A kind this version does not know is a newer peer's: it decodes to `kind: 'unknown'` with its
 * header (so the receiver still counts its sequence number and can say that the message needs a
 * newer version) and its body as unread bytes (so it re-encodes to exactly the same payload).
 * A bad version or header is refused as before.
 *
 * The sequence number travels here, encrypted, rather than in the envelope: the relay learns
 * nothing about how many messages a conversation holds, and a sender cannot have it rewritten.
 * `sentAt` is the sender's claim, for display; ordering uses `sequence`.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import { checkMessageId } from '../envelope/message-id.js';
import { pad, unpad } from '../envelope/padding.js';
import { MAX_APPLICATION_PAYLOAD_BYTES, MAX_RECEIPT_IDS, MAX_SEQUENCE, MESSAGE_ID_BYTES } from '../limits.js';

export const APPLICATION_PAYLOAD_VERSION = 1;

/** version, kind, sequence, sentAt. */
export const APPLICATION_HEADER_BYTES = 1 + 1 + 4 + 8;

/** The largest Text or Bytes body: what is left after the header and the body's length prefix. */
export const MAX_APPLICATION_BODY_BYTES = MAX_APPLICATION_PAYLOAD_BYTES - APPLICATION_HEADER_BYTES - 4;

export enum PayloadKind {
  /** A text message (UTF-8). */
  Text = 1,
  /** Opaque application bytes (the app defines them). */
  Bytes = 2,
  /** "I have received and stored these messages": shown as delivered ticks. */
  DeliveryReceipt = 3,
  /** "I reset our session": the peer discards its old session state for this conversation. */
  SessionReset = 4,
}

interface PayloadHeader {
  /** Sender's per-conversation sequence number, 0..MAX_SEQUENCE. */
  readonly sequence: number;
  /** Sender's clock, ms since the Unix epoch. */
  readonly sentAt: number;
}

export type ApplicationPayload =
  | (PayloadHeader & { readonly kind: PayloadKind.Text; readonly text: string })
  | (PayloadHeader & { readonly kind: PayloadKind.Bytes; readonly bytes: Uint8Array })
  | (PayloadHeader & {
      readonly kind: PayloadKind.DeliveryReceipt;
      readonly messageIds: readonly Uint8Array[];
    })
  | (PayloadHeader & { readonly kind: PayloadKind.SessionReset })
  | (PayloadHeader & {
      /** A kind this version does not know (sent by a newer peer). */
      readonly kind: 'unknown';
      /** The kind byte as sent: not a PayloadKind of this version. */
      readonly rawKind: number;
      /** The bytes after the header, unread. */
      readonly body: Uint8Array;
    });

const KNOWN_KINDS: ReadonlySet<number> = new Set(
  Object.values(PayloadKind).filter((v): v is number => typeof v === 'number'),
);

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is refused; ignoreBOM: a leading U+FEFF is content, kept as sent.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** In a `u` regex a surrogate class matches only unpaired surrogates, which UTF-8 cannot carry. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function malformed(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Malformed, `application payload: ${message}`);
}

function checkHeader(p: PayloadHeader): void {
  if (!Number.isInteger(p.sequence) || p.sequence < 0 || p.sequence > MAX_SEQUENCE) {
    throw malformed(`sequence must be an integer from 0 to ${MAX_SEQUENCE}`);
  }
  if (!Number.isSafeInteger(p.sentAt) || p.sentAt < 0) {
    throw malformed('sentAt must be a non-negative safe integer (ms since the epoch)');
  }
}

function checkBodyLength(length: number): void {
  if (length > MAX_APPLICATION_BODY_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `application payload: body of ${length} bytes, the limit is ${MAX_APPLICATION_BODY_BYTES}`,
    );
  }
}

function checkReceiptCount(count: number): void {
  if (count > MAX_RECEIPT_IDS) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `application payload: ${count} receipt ids, the limit is ${MAX_RECEIPT_IDS}`,
    );
  }
  if (count < 1) throw malformed('a delivery receipt lists at least one message id');
}

/**
 * Encodes a payload; throws MALFORMED / TOO_LARGE on an invalid field. An `unknown` payload is
 * written back as it was decoded (its raw kind, then its body as is).
 */
export function encodeApplicationPayload(payload: ApplicationPayload): Uint8Array {
  checkHeader(payload);
  let body: Uint8Array[];
  let bodySize: number;
  switch (payload.kind) {
    case PayloadKind.Text: {
      if (typeof payload.text !== 'string') throw malformed('text must be a string');
      if (LONE_SURROGATE.test(payload.text)) throw malformed('text contains an unpaired surrogate');
      const utf8 = utf8Encoder.encode(payload.text);
      checkBodyLength(utf8.length);
      body = [utf8];
      bodySize = 4 + utf8.length;
      break;
    }
    case PayloadKind.Bytes:
      assertUint8Array(payload.bytes, 'application payload: bytes');
      checkBodyLength(payload.bytes.length);
      body = [payload.bytes];
      bodySize = 4 + payload.bytes.length;
      break;
    case PayloadKind.DeliveryReceipt:
      if (!Array.isArray(payload.messageIds)) throw malformed('messageIds must be an array');
      checkReceiptCount(payload.messageIds.length);
      payload.messageIds.forEach((id, i) => checkMessageId(id, `application payload: messageIds[${i}]`));
      body = [...payload.messageIds];
      bodySize = 2 + payload.messageIds.length * MESSAGE_ID_BYTES;
      break;
    case PayloadKind.SessionReset:
      body = [];
      bodySize = 0;
      break;
    case 'unknown':
      if (!Number.isInteger(payload.rawKind) || payload.rawKind < 0 || payload.rawKind > 0xff) {
        throw malformed('rawKind must be a byte');
      }
      if (KNOWN_KINDS.has(payload.rawKind)) {
        throw malformed(`kind ${payload.rawKind} is known: encode it as that kind`);
      }
      assertUint8Array(payload.body, 'application payload: body');
      assertMaxLength(
        APPLICATION_HEADER_BYTES + payload.body.length,
        MAX_APPLICATION_PAYLOAD_BYTES,
        'application payload',
      );
      body = [payload.body];
      bodySize = payload.body.length;
      break;
    default: {
      const kind: never = payload;
      throw malformed(`unknown kind ${(kind as { kind: unknown }).kind as number}`);
    }
  }
  const w = new BinaryWriter(APPLICATION_HEADER_BYTES + bodySize)
    .u8(APPLICATION_PAYLOAD_VERSION)
    .u8(payload.kind === 'unknown' ? payload.rawKind : payload.kind)
    .u32(payload.sequence)
    .u64(payload.sentAt);
  if (payload.kind === PayloadKind.DeliveryReceipt) w.u16(body.length);
  else if (payload.kind === PayloadKind.Text || payload.kind === PayloadKind.Bytes) w.u32(body[0]!.length);
  for (const part of body) w.bytes(part);
  return w.finish();
}

/**
 * Decodes a payload strictly; throws ProtocolError only (TOO_LARGE, UNSUPPORTED_VERSION,
 * MALFORMED). Lengths and counts are checked before anything is allocated. A kind this version
 * does not know decodes to `kind: 'unknown'` (its header checked, its body kept unread).
 */
export function decodeApplicationPayload(bytes: Uint8Array): ApplicationPayload {
  assertUint8Array(bytes, 'application payload');
  assertMaxLength(bytes.length, MAX_APPLICATION_PAYLOAD_BYTES, 'application payload');
  const r = new BinaryReader(bytes, 'application payload');
  const version = r.u8('version');
  if (version !== APPLICATION_PAYLOAD_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `application payload: version ${version} is not supported (expected ${APPLICATION_PAYLOAD_VERSION})`,
    );
  }
  const kind = r.u8('kind');
  const header = { sequence: r.u32('sequence'), sentAt: r.u64('sentAt') };
  let payload: ApplicationPayload;
  switch (kind) {
    case PayloadKind.Text: {
      const utf8 = r.bounded(r.u32('text length'), MAX_APPLICATION_BODY_BYTES, 'text');
      let text: string;
      try {
        text = utf8Decoder.decode(utf8);
      } catch {
        throw malformed('text is not valid UTF-8');
      }
      payload = { kind, ...header, text };
      break;
    }
    case PayloadKind.Bytes:
      payload = {
        kind,
        ...header,
        bytes: r.bounded(r.u32('bytes length'), MAX_APPLICATION_BODY_BYTES, 'bytes'),
      };
      break;
    case PayloadKind.DeliveryReceipt: {
      const count = r.u16('receipt count');
      checkReceiptCount(count);
      if (count * MESSAGE_ID_BYTES > r.remaining) {
        throw malformed(`receipt claims ${count} ids, ${r.remaining} bytes left`);
      }
      const messageIds: Uint8Array[] = [];
      for (let i = 0; i < count; i++) messageIds.push(r.fixed(MESSAGE_ID_BYTES, `messageIds[${i}]`));
      payload = { kind, ...header, messageIds };
      break;
    }
    case PayloadKind.SessionReset:
      payload = { kind, ...header };
      break;
    default:
      payload = { kind: 'unknown', rawKind: kind, ...header, body: r.fixed(r.remaining, 'body') };
  }
  r.end();
  return payload;
}

/** `pad(encodeApplicationPayload(payload))`: the bytes the client hands to the ratchet. */
export function sealApplicationPayload(payload: ApplicationPayload): Uint8Array {
  return pad(encodeApplicationPayload(payload));
}

/** `decodeApplicationPayload(unpad(plaintext))`: what the ratchet's plaintext carries. */
export function openApplicationPayload(plaintext: Uint8Array): ApplicationPayload {
  return decodeApplicationPayload(unpad(plaintext));
}
