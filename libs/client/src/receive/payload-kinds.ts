/**
 * What each application payload kind does on arrival: one row per kind, so a kind added to the
 * protocol's PayloadKind fails to compile here until it has a row. A kind this version does not
 * know (a newer peer's, decoded as `'unknown'`) still takes its sequence number: it becomes an
 * `unsupported` inbox entry, handed over in order like any message, never a gap.
 */
import {
  type AddressString,
  type ApplicationPayload,
  type MessageIdString,
  PayloadKind,
  formatMessageId,
} from '@usm/protocol';
import type { InboxEntry } from '../client-records.js';

/** The entry fields that come from the mail rather than the payload. */
export interface EntryHead {
  readonly peer: AddressString;
  readonly id: MessageIdString;
  readonly receivedAt: number;
}

/** What a decrypted payload does to its conversation. */
export interface PayloadEffect {
  /** An entry for the local inbox, and from there for the app, in sequence order. */
  readonly entry?: InboxEntry;
  /** The peer set up a new session: both directions number from 0 again; the app waits for this next. */
  readonly restartAt?: number;
}

type Handlers = {
  readonly [K in ApplicationPayload['kind']]: (
    payload: Extract<ApplicationPayload, { kind: K }>,
    head: EntryHead,
  ) => PayloadEffect;
};

const PAYLOAD_KINDS: Handlers = {
  [PayloadKind.Text]: (p, head) => ({
    entry: { ...head, kind: 'text', text: p.text, sequence: p.sequence, sentAt: p.sentAt },
  }),
  [PayloadKind.Bytes]: (p, head) => ({
    entry: { ...head, kind: 'bytes', bytes: p.bytes, sequence: p.sequence, sentAt: p.sentAt },
  }),
  [PayloadKind.DeliveryReceipt]: (p, head) => ({
    entry: {
      ...head,
      kind: 'receipt',
      ids: p.messageIds.map((m) => formatMessageId(m)),
      sequence: p.sequence,
      sentAt: p.sentAt,
    },
  }),
  // Numbering restarts after this message: the next one the app waits for is sequence + 1.
  [PayloadKind.SessionReset]: (p) => ({ restartAt: p.sequence + 1 }),
  unknown: (p, head) => ({
    entry: { ...head, kind: 'unsupported', rawKind: p.rawKind, sequence: p.sequence, sentAt: p.sentAt },
  }),
};

/** The effect of `payload`, received from `head.peer`. */
export function effectOf(payload: ApplicationPayload, head: EntryHead): PayloadEffect {
  const handle = PAYLOAD_KINDS[payload.kind] as (p: ApplicationPayload, h: EntryHead) => PayloadEffect;
  return handle(payload, head);
}
