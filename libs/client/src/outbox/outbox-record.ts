/**
 * How the outbox lays an entry out in a ClientStore. Two keys per entry, both named after a
 * sequence number that fixes the queue order (the store lists keys sorted):
 *   <prefix>m/<seq as 16 hex digits>   metadata, rewritten on every attempt (small)
 *   <prefix>b/<seq as 16 hex digits>   the envelope bytes, written once
 * Neither key names the recipient or the message id (the file store encrypts key names anyway;
 * IndexedDB does not).
 *
 * Metadata, version 1: u8 version | messageId(16) | f64 enqueuedAt | f64 nextAttemptAt |
 * f64 expiresAt | u32 attempts | u16 recipient length | recipient (UTF-8), read and written with
 * the shared BinaryReader/BinaryWriter of @usm/crypto.
 */
import { BinaryReader, BinaryWriter } from '@usm/crypto';
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
  return new BinaryWriter(FIXED_BYTES + recipient.length)
    .u8(META_VERSION)
    .bytes(meta.messageId)
    .f64(meta.enqueuedAt)
    .f64(meta.nextAttemptAt)
    .f64(meta.expiresAt)
    .u32(meta.attempts)
    .u16(recipient.length)
    .bytes(recipient)
    .finish();
}

export function decodeMeta(seq: number, bytes: Uint8Array): OutboxMeta {
  const r = new BinaryReader(bytes, 'entry metadata', (_fault, message) => corrupt(message));
  if (r.u8('version') !== META_VERSION) throw corrupt('an entry has an unknown layout');
  const messageId = r.fixed(MESSAGE_ID_BYTES, 'message id');
  const enqueuedAt = r.f64('enqueuedAt');
  const nextAttemptAt = r.f64('nextAttemptAt');
  const expiresAt = r.f64('expiresAt');
  const attempts = r.u32('attempts');
  const rawRecipient = r.fixed(r.u16('recipient length'), 'recipient');
  r.end();
  if (![enqueuedAt, nextAttemptAt, expiresAt].every(Number.isFinite))
    throw corrupt('an entry has a bad time');
  let recipient: string;
  try {
    recipient = utf8Strict.decode(rawRecipient);
  } catch {
    throw corrupt('an entry has a recipient that is not UTF-8');
  }
  return { seq, messageId, recipient, attempts, nextAttemptAt, expiresAt, enqueuedAt };
}
