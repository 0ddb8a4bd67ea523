/**
 * How the client lays out its state in a ClientStore (every key below; the outbox owns
 * `outbox/`). Records are small versioned binary layouts, read and written with the shared
 * BinaryReader/BinaryWriter of @usm/crypto; anything that does not decode is CORRUPT_STORE, never
 * a guess.
 *
 *   identity                        the identity key pair (`version | type | secret`)
 *   prekeys                         PrekeyStore pickle
 *   session/<peer>                  Session pickle (ratchet states with this peer)
 *   sendseq/<peer>                  the sequence number our next message to this peer carries
 *   recvseq/<peer>                  the sequence number the app waits for from this peer
 *   seen/<peer>                     SeenMessageIds of this peer's messages
 *   inbox/<peer>/<seq>/<id>         a decrypted message (or receipt, or a message of a kind this
 *                                   version does not know) not yet handed to the app
 *   receipt/<peer>/<id>             a message handed to the app whose receipt is not yet queued
 *
 * `<peer>` is an address string (base64url and a decimal device id: no '/'), `<seq>` 8 hex
 * digits (so keys list in sequence order), `<id>` a message id string. The inbox holds
 * plaintext: use a store that is encrypted at rest (NodeFileStore) where the device may be lost.
 */
import { BinaryReader, BinaryWriter } from '@usm/crypto';
import type { AddressString, MessageIdString } from '@usm/protocol';
import { ClientError, ClientErrorCode } from './errors.js';

export const IDENTITY_KEY = 'identity';
export const PREKEYS_KEY = 'prekeys';
export const sessionKey = (peer: string) => `session/${peer}`;
export const sendSeqKey = (peer: string) => `sendseq/${peer}`;
export const recvSeqKey = (peer: string) => `recvseq/${peer}`;
export const seenKey = (peer: string) => `seen/${peer}`;
export const INBOX_PREFIX = 'inbox/';
export const inboxPrefix = (peer: string) => `${INBOX_PREFIX}${peer}/`;
export const inboxKey = (peer: string, sequence: number, id: string) =>
  `${inboxPrefix(peer)}${sequence.toString(16).padStart(8, '0')}/${id}`;
export const RECEIPT_PREFIX = 'receipt/';
export const receiptPrefix = (peer: string) => `${RECEIPT_PREFIX}${peer}/`;
export const receiptKey = (peer: string, id: string) => `${receiptPrefix(peer)}${id}`;

/** The peer named by an inbox or receipt key. */
export function peerOfKey(prefix: string, key: string): AddressString {
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (!key.startsWith(prefix) || slash <= 0) throw corrupt('a key of the local inbox is malformed');
  return rest.slice(0, slash) as AddressString;
}

function corrupt(what: string): ClientError {
  return new ClientError(
    ClientErrorCode.CorruptStore,
    `client state: ${what}; the store holds data this library did not write (restore a backup or reset the conversation)`,
  );
}

/** A reader of one record whose failed checks (bytes missing or left over) are CORRUPT_STORE. */
const reader = (bytes: Uint8Array, what: string) =>
  new BinaryReader(bytes, what, (_fault, message) => corrupt(message));

// ---------------------------------------------------------------------------------------------
// Sequence counters (sendseq/, recvseq/): version u8 | value f64. Two keys, not one record: the
// send path writes its counter through the outbox (whose batch may wait in the outbox's queue)
// and the delivery path writes the other one directly, so neither can overwrite the other's.
// ---------------------------------------------------------------------------------------------

export interface ConversationMeta {
  /** The sequence number our next message to this peer carries. */
  sendNext: number;
  /** The sequence number the application waits for from this peer. */
  recvNext: number;
}

const COUNTER_VERSION = 1;
const COUNTER_BYTES = 9;

export function encodeCounter(value: number): Uint8Array {
  return new BinaryWriter(COUNTER_BYTES).u8(COUNTER_VERSION).f64(value).finish();
}

export function decodeCounter(bytes: Uint8Array): number {
  const r = reader(bytes, 'conversation counter');
  if (r.u8('version') !== COUNTER_VERSION) throw corrupt('a conversation counter is damaged');
  const value = r.f64('value');
  r.end();
  if (!Number.isSafeInteger(value) || value < 0 || value > 0x1_0000_0000) {
    throw corrupt('a conversation counter is damaged');
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Inbox entry: version u8 | kind u8 | sequence u32 | sentAt f64 | receivedAt f64 | id (22 chars,
// ASCII) | body length u32 | body (text: UTF-8; bytes; receipt: 22-char ids concatenated;
// unsupported: the payload's kind byte, one byte)
// ---------------------------------------------------------------------------------------------

export type InboxContent =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'receipt'; readonly ids: readonly MessageIdString[] }
  /** A payload of a kind this version does not know (`rawKind`: its kind byte). */
  | { readonly kind: 'unsupported'; readonly rawKind: number };

export type InboxEntry = InboxContent & {
  readonly peer: AddressString;
  readonly id: MessageIdString;
  readonly sequence: number;
  readonly sentAt: number;
  readonly receivedAt: number;
};

const INBOX_VERSION = 1;
const ID_CHARS = 22;
const INBOX_FIXED = 1 + 1 + 4 + 8 + 8 + ID_CHARS + 4;
const KIND_CODE = { text: 1, bytes: 2, receipt: 3, unsupported: 4 } as const satisfies Record<
  InboxContent['kind'],
  number
>;
const ascii = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const BODY_OF: {
  readonly [K in InboxContent['kind']]: (e: Extract<InboxContent, { kind: K }>) => Uint8Array;
} = {
  text: (e) => ascii.encode(e.text),
  bytes: (e) => e.bytes,
  receipt: (e) => ascii.encode(e.ids.join('')),
  unsupported: (e) => Uint8Array.of(e.rawKind),
};

/** Throws (a bug, not bad data) unless `e.id` is 22 ASCII characters, as every MessageIdString is. */
export function encodeInboxEntry(e: InboxEntry): Uint8Array {
  const body = BODY_OF[e.kind](e as never);
  return new BinaryWriter(INBOX_FIXED + body.length)
    .u8(INBOX_VERSION)
    .u8(KIND_CODE[e.kind])
    .u32(e.sequence)
    .f64(e.sentAt)
    .f64(e.receivedAt)
    .bytes(ascii.encode(e.id))
    .u32(body.length)
    .bytes(body)
    .finish();
}

export function decodeInboxEntry(peer: AddressString, bytes: Uint8Array): InboxEntry {
  const r = reader(bytes, 'inbox entry');
  if (r.u8('version') !== INBOX_VERSION) throw corrupt('an inbox entry is damaged');
  const kind = r.u8('kind');
  const sequence = r.u32('sequence');
  const sentAt = r.f64('sentAt');
  const receivedAt = r.f64('receivedAt');
  const rawId = r.fixed(ID_CHARS, 'id');
  const body = r.fixed(r.u32('body length'), 'body');
  r.end();
  if (!Number.isFinite(sentAt) || !Number.isFinite(receivedAt)) throw corrupt('an inbox entry is damaged');
  let id: MessageIdString;
  let text: string;
  try {
    id = strict.decode(rawId) as MessageIdString;
    text = kind === KIND_CODE.text || kind === KIND_CODE.receipt ? strict.decode(body) : '';
  } catch {
    throw corrupt('an inbox entry is damaged');
  }
  const head = { peer, id, sequence, sentAt, receivedAt };
  switch (kind) {
    case KIND_CODE.text:
      return { ...head, kind: 'text', text };
    case KIND_CODE.bytes:
      return { ...head, kind: 'bytes', bytes: body };
    case KIND_CODE.receipt: {
      if (text.length % ID_CHARS !== 0) throw corrupt('an inbox receipt is damaged');
      const ids: MessageIdString[] = [];
      for (let i = 0; i < text.length; i += ID_CHARS)
        ids.push(text.slice(i, i + ID_CHARS) as MessageIdString);
      return { ...head, kind: 'receipt', ids };
    }
    case KIND_CODE.unsupported:
      if (body.length !== 1) throw corrupt('an inbox entry is damaged');
      return { ...head, kind: 'unsupported', rawKind: body[0]! };
    default:
      throw corrupt('an inbox entry has an unknown kind');
  }
}
