/**
 * Validators for what the relay sends: the ack reply of every client event and the server
 * pushes. The client runs them on everything it receives; a relay is not trusted with the
 * client's memory any more than a client is with the relay's. They also turn the ArrayBuffers
 * socket.io-client delivers in browsers into Uint8Arrays.
 */
import type {
  AckResult,
  ClientEventName,
  ClientToServerEvents,
  ErrorReply,
  FetchResult,
  HandshakeCompleteResult,
  HandshakeInitResult,
  MailItem,
  MailPush,
  MailSyncPush,
  PrekeyBundle,
  PrekeysClaimResult,
  PrekeysCountResult,
  PrekeysLowPush,
  PrekeysPublishResult,
  Reply,
  SendOutcome,
  SendResult,
  ServerToClientEvents,
} from '../events.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import {
  MAX_ACKS_PER_CALL,
  MAX_ENVELOPES_PER_SEND,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  MAX_RETRY_AFTER_MS,
} from '../limits.js';
import {
  addressString,
  checkTotalBytes,
  cursorString,
  envelopeBytes,
  messageIdString,
  prekeyRecord,
} from './client-payloads.validation.js';
import {
  array,
  boolean,
  byStatus,
  bytes,
  integer,
  literal,
  malformed,
  nullable,
  object,
  refine,
  string,
  type Validator,
} from './schema.js';

const PROTOCOL_ERROR_CODES = new Set<string>(Object.values(ProtocolErrorCode));

export const errorCode: Validator<ProtocolErrorCode> = (value, path) => {
  if (typeof value !== 'string' || !PROTOCOL_ERROR_CODES.has(value)) {
    throw malformed(path, 'expected a ProtocolErrorCode');
  }
  return value as ProtocolErrorCode;
};

const errorMessage = string({ max: MAX_ERROR_MESSAGE_CHARS });
const count = integer(0, 0xffff_ffff);
const timestamp = integer(0, Number.MAX_SAFE_INTEGER);

export const errorReply: Validator<ErrorReply> = object(
  { status: literal('error'), code: errorCode, message: errorMessage },
  { retryAfterMs: integer(0, MAX_RETRY_AFTER_MS), serverTimeMs: timestamp },
);

/** `{ status: 'ok', ...result }` or the error shape. */
export function reply<T extends object>(result: Validator<T>): Validator<Reply<T>> {
  return byStatus({
    ok: (value: unknown, path: string) => {
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw malformed(path, 'expected a plain object');
      const { status: _ok, ...rest } = value as { status: 'ok' };
      return { status: 'ok' as const, ...result(rest, path) };
    },
    error: errorReply,
  }) as Validator<Reply<T>>;
}

const handshakeInitResult: Validator<HandshakeInitResult> = object({
  message: bytes({ min: 1, max: MAX_HANDSHAKE_MESSAGE_BYTES }),
});
const handshakeCompleteResult: Validator<HandshakeCompleteResult> = object({ address: addressString });

const sendOutcome: Validator<SendOutcome> = byStatus({
  stored: object({ status: literal('stored'), id: messageIdString }),
  duplicate: object({ status: literal('duplicate'), id: messageIdString }),
  rejected: object({ status: literal('rejected'), code: errorCode, message: errorMessage }),
});
const sendResult: Validator<SendResult> = object({
  results: array(sendOutcome, { min: 1, max: MAX_ENVELOPES_PER_SEND }),
});

const ackResult: Validator<AckResult> = object({ deleted: integer(0, MAX_ACKS_PER_CALL) });

/** A MailItem's `cursor`: a non-negative decimal integer of at most 19 digits, no leading zeros. */
const mailboxPosition: Validator<string> = string({
  min: 1,
  max: 19,
  pattern: /^(0|[1-9][0-9]{0,18})$/,
  patternName: 'a decimal integer',
});

export const mailItem: Validator<MailItem> = object({
  envelope: envelopeBytes,
  sender: addressString,
  receivedAt: timestamp,
  cursor: mailboxPosition,
});

/** At most MAX_FETCH_PAGE items and MAX_FETCH_PAGE_BYTES of envelopes. */
function mailList(min: number): Validator<MailItem[]> {
  return refine(array(mailItem, { min, max: MAX_FETCH_PAGE }), (mail, path) =>
    checkTotalBytes(
      mail.map((m) => m.envelope),
      MAX_FETCH_PAGE_BYTES,
      path,
    ),
  );
}

const fetchResult: Validator<FetchResult> = object({ mail: mailList(0), cursor: nullable(cursorString) });

const prekeysPublishResult: Validator<PrekeysPublishResult> = object({ oneTimePrekeys: count });

const prekeyBundle: Validator<PrekeyBundle> = object({
  address: addressString,
  signedPrekey: prekeyRecord,
  kemPrekey: prekeyRecord,
  oneTimePrekey: nullable(prekeyRecord),
});
const prekeysClaimResult: Validator<PrekeysClaimResult> = object({ bundle: prekeyBundle });

const prekeysCountResult: Validator<PrekeysCountResult> = object({
  oneTimePrekeys: count,
  hasSignedPrekey: boolean,
  hasKemPrekey: boolean,
});

/** The success result carried by the ack of client event `E`. */
export type ClientResult<E extends ClientEventName> =
  Parameters<Parameters<ClientToServerEvents[E]>[1]>[0] extends Reply<infer T> ? T : never;

const RESULT_VALIDATORS: { readonly [E in ClientEventName]: Validator<ClientResult<E>> } = {
  'handshake:init': handshakeInitResult,
  'handshake:complete': handshakeCompleteResult,
  send: sendResult,
  ack: ackResult,
  fetch: fetchResult,
  'prekeys:publish': prekeysPublishResult,
  'prekeys:claim': prekeysClaimResult,
  'prekeys:count': prekeysCountResult,
};

/**
 * Checks the ack reply of client event `event`; returns it typed, or throws ProtocolError
 * MALFORMED / TOO_LARGE naming the field (path `<event> reply.<field>`).
 *
 * @example
 * const reply = validateReply('send', await socket.emitWithAck('send', { envelopes }));
 * if (reply.status === 'error') throw new ProtocolError(reply.code, reply.message);
 */
export function validateReply<E extends ClientEventName>(event: E, value: unknown): Reply<ClientResult<E>> {
  if (typeof event !== 'string' || !Object.hasOwn(RESULT_VALIDATORS, event)) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'event: not a client event of this protocol');
  }
  const result = RESULT_VALIDATORS[event] as Validator<ClientResult<E>>;
  return reply(result)(value, `${event} reply`);
}

// ---------------------------------------------------------------------------------------------
// Server pushes
// ---------------------------------------------------------------------------------------------

export type ServerEventName = keyof ServerToClientEvents;
export type ServerPayload<E extends ServerEventName> = Parameters<ServerToClientEvents[E]>[0];

const PUSH_VALIDATORS: { readonly [E in ServerEventName]: Validator<ServerPayload<E>> } = {
  mail: object({ mail: mailList(1) }) as Validator<MailPush>,
  'mail:sync': object({ reason: literal('backlog', 'notices') }) as Validator<MailSyncPush>,
  'prekeys:low': object({ remaining: count, threshold: count }) as Validator<PrekeysLowPush>,
};

/** Checks the payload of server push `event`; throws ProtocolError naming the field. */
export function validateServerPush<E extends ServerEventName>(event: E, payload: unknown): ServerPayload<E> {
  if (typeof event !== 'string' || !Object.hasOwn(PUSH_VALIDATORS, event)) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'event: not a server event of this protocol');
  }
  return PUSH_VALIDATORS[event](payload, event);
}
