/**
 * How the outbox lays an entry out in a ClientStore. Two keys per entry, both named after a
 * sequence number that fixes the queue order (the store lists keys sorted):
 *   <prefix>m/<seq as 16 hex digits>   metadata, rewritten on every attempt (small)
 *   <prefix>b/<seq as 16 hex digits>   the envelope bytes, written once
 * Neither key names the recipient or the message id (the file store encrypts key names anyway;
 * IndexedDB does not).
 *
 * Metadata, version 1: u8 version | messageId(16) | f64 enqueuedAt | f64 nextAttemptAt |
 * f64 expiresAt | u32 attempts | u16 recipient length | recipient (UTF-8).
 */
import { MESSAGE_ID_BYTES } from '@usm/protocol';
import { ClientError, ClientErrorCode } from '../errors.js';
const META_VERSION = 1;
const FIXED_BYTES = 1 + MESSAGE_ID_BYTES + 8 * 3 + 4 + 2;
const SEQ_DIGITS = 16;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** An entry's metadata, as kept in memory (the envelope is loaded only when needed). */
export interface OutboxMeta {
  seq: number;
  messageId: Uint8Array;
  recipient: string;
  attempts: number;
  nextAttemptAt: number;
  expiresAt: number;
  enqueuedAt: number;
}

export const metaKey = (prefix: string, seq: number) => `${prefix}m/${seqName(seq)}`;
export const bodyKey = (prefix: string, seq: number) => `${prefix}b/${seqName(seq)}`;

function seqName(seq: number): string {
  return seq.toString(16).padStart(SEQ_DIGITS, '0');
}

const corrupt = (what: string) =>
  new ClientError(
    ClientErrorCode.CorruptStore,
    `outbox: ${what}; the store holds data this library did not write (restore a backup or clear the outbox)`,
  );

/** The sequence number named by a metadata key, or CORRUPT_STORE. */
export function seqOfMetaKey(prefix: string, key: string): number {
  const name = key.slice(prefix.length + 2);
  if (!key.startsWith(`${prefix}m/`) || !/^[0-9a-f]{16}$/.test(name))
    throw corrupt('an entry key is malformed');
  const seq = parseInt(name, 16);
  if (!Number.isSafeInteger(seq)) throw corrupt('an entry key is out of range');
  return seq;
}

export function encodeMeta(meta: OutboxMeta): Uint8Array {
  const recipient = utf8.encode(meta.recipient);
  const out = new Uint8Array(FIXED_BYTES + recipient.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, META_VERSION);
  out.set(meta.messageId, 1);
  view.setFloat64(17, meta.enqueuedAt, false);
  view.setFloat64(25, meta.nextAttemptAt, false);
  view.setFloat64(33, meta.expiresAt, false);
  view.setUint32(41, meta.attempts, false);
  view.setUint16(45, recipient.length, false);
  out.set(recipient, FIXED_BYTES);
  return out;
}

export function decodeMeta(seq: number, bytes: Uint8Array): OutboxMeta {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < FIXED_BYTES || view.getUint8(0) !== META_VERSION) {
    throw corrupt('an entry has an unknown layout');
  }
  let o = 1;
  const messageId = bytes.slice(o, (o += MESSAGE_ID_BYTES));
  const enqueuedAt = view.getFloat64(o, false);
  const nextAttemptAt = view.getFloat64((o += 8), false);
  const expiresAt = view.getFloat64((o += 8), false);
  const attempts = view.getUint32((o += 8), false);
  const length = view.getUint16((o += 4), false);
  o += 2;
  if (bytes.length !== o + length) throw corrupt('an entry has the wrong length');
  if (![enqueuedAt, nextAttemptAt, expiresAt].every(Number.isFinite))
    throw corrupt('an entry has a bad time');
  let recipient: string;
  try {
    recipient = utf8Strict.decode(bytes.subarray(o));
  } catch {
    throw corrupt('an entry has a recipient that is not UTF-8');
  }
  return { seq, messageId, recipient, attempts, nextAttemptAt, expiresAt, enqueuedAt };
}
