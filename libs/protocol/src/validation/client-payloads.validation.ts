/**
 * Validators for every client-to-server payload (events.ts). The relay gateway runs
 * `validateClientPayload(event, payload)` first thing in every handler and answers a thrown
 * ProtocolError with an error reply of the same code; nothing unchecked reaches its store.
 *
 * They check shape and limits (types, exact fields, counts, sizes, canonical address and id
 * strings), not meaning: an envelope is checked for size here and decoded per envelope by the
 * relay (`peekEnvelopeRoute`), so one bad envelope in a batch gets its own `rejected` outcome.
 */
import { parseAddress, type AddressString } from '../address/address.js';
import { parseMessageId, type MessageIdString } from '../envelope/message-id.js';
import { ENVELOPE_HEADER_BYTES, MAX_ENVELOPE_BYTES } from '../envelope/envelope.codec.js';
import type {
  AckRequest,
  ClientEventName,
  ClientToServerEvents,
  FetchRequest,
  HandshakeCompleteRequest,
  HandshakeInitRequest,
  PrekeyRecord,
  PrekeysClaimRequest,
  PrekeysCountRequest,
  PrekeysPublishRequest,
  SendRequest,
} from '../events.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import {
  MAX_ACKS_PER_CALL,
  MAX_ADDRESS_STRING_CHARS,
  MAX_CURSOR_CHARS,
  MAX_ENVELOPES_PER_SEND,
  MAX_EVENT_BINARY_BYTES,
  MAX_FETCH_PAGE,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_ID,
  MAX_PREKEY_RECORD_BYTES,
  MAX_SEND_BATCH_BYTES,
  MESSAGE_ID_STRING_CHARS,
  MIN_ENVELOPE_CIPHERTEXT_BYTES,
} from '../limits.js';
import {
  array,
  bytes,
  integer,
  malformed,
  object,
  parsed,
  refine,
  string,
  tooLarge,
  type Validator,
} from './schema.js';

// ---------------------------------------------------------------------------------------------
// Shared pieces (also used by the server-payload validators)
// ---------------------------------------------------------------------------------------------

export const addressString: Validator<AddressString> = parsed<AddressString>(
  MAX_ADDRESS_STRING_CHARS,
  (text) => parseAddress(text),
);

export const messageIdString: Validator<MessageIdString> = parsed<MessageIdString>(
  MESSAGE_ID_STRING_CHARS,
  (text, path) => parseMessageId(text, path),
);

/** An encoded envelope's size bounds (its content is decoded by the relay, envelope by envelope). */
export const envelopeBytes: Validator<Uint8Array> = bytes({
  min: ENVELOPE_HEADER_BYTES + MIN_ENVELOPE_CIPHERTEXT_BYTES,
  max: MAX_ENVELOPE_BYTES,
});

/** Relay-chosen cursor: base64url-like characters only, so it is safe in logs and SQL params. */
export const cursorString: Validator<string> = string({
  min: 1,
  max: MAX_CURSOR_CHARS,
  pattern: /^[A-Za-z0-9_.~-]+$/,
  patternName: 'letters, digits and _ . ~ -',
});

export const prekeyRecord: Validator<PrekeyRecord> = object({
  id: integer(0, MAX_PREKEY_ID),
  record: bytes({ min: 1, max: MAX_PREKEY_RECORD_BYTES }),
});

/** Throws TOO_LARGE when the byte lengths add up past `max`. */
export function checkTotalBytes(parts: readonly Uint8Array[], max: number, path: string): void {
  let total = 0;
  for (const p of parts) total += p.length;
  if (total > max) throw tooLarge(path, `${total} bytes in all, the limit is ${max}`);
}

// ---------------------------------------------------------------------------------------------
// One validator per event
// ---------------------------------------------------------------------------------------------

const handshakeMessage = object({ message: bytes({ min: 1, max: MAX_HANDSHAKE_MESSAGE_BYTES }) });

export const handshakeInitRequest: Validator<HandshakeInitRequest> = handshakeMessage;
export const handshakeCompleteRequest: Validator<HandshakeCompleteRequest> = handshakeMessage;

export const sendRequest: Validator<SendRequest> = refine(
  object({ envelopes: array(envelopeBytes, { min: 1, max: MAX_ENVELOPES_PER_SEND }) }),
  (req, path) => checkTotalBytes(req.envelopes, MAX_SEND_BATCH_BYTES, `${path}.envelopes`),
);

export const ackRequest: Validator<AckRequest> = refine(
  object({ ids: array(messageIdString, { min: 1, max: MAX_ACKS_PER_CALL }) }),
  (req, path) => checkUnique(req.ids, (id) => id, `${path}.ids`),
);

export const fetchRequest: Validator<FetchRequest> = object(
  {},
  { cursor: cursorString, limit: integer(1, MAX_FETCH_PAGE) },
);

export const prekeysPublishRequest: Validator<PrekeysPublishRequest> = refine(
  object(
    {},
    {
      signedPrekey: prekeyRecord,
      kemPrekey: prekeyRecord,
      oneTimePrekeys: array(prekeyRecord, { max: MAX_ONE_TIME_PREKEYS_PER_PUBLISH }),
    },
  ),
  (req, path) => {
    const oneTime = req.oneTimePrekeys ?? [];
    if (!req.signedPrekey && !req.kemPrekey && oneTime.length === 0) {
      throw malformed(path, 'nothing to publish (give signedPrekey, kemPrekey or oneTimePrekeys)');
    }
    checkUnique(oneTime, (p) => p.id, `${path}.oneTimePrekeys`);
    const records = [req.signedPrekey?.record, req.kemPrekey?.record, ...oneTime.map((p) => p.record)];
    checkTotalBytes(
      records.filter((r): r is Uint8Array => r !== undefined),
      MAX_EVENT_BINARY_BYTES,
      path,
    );
  },
);

export const prekeysClaimRequest: Validator<PrekeysClaimRequest> = object({ address: addressString });

export const prekeysCountRequest: Validator<PrekeysCountRequest> = object(
  {},
) as Validator<PrekeysCountRequest>;

/** Throws MALFORMED naming the first repeated element (`path[i]`). */
function checkUnique<T>(items: readonly T[], key: (item: T) => unknown, path: string): void {
  const seen = new Set<unknown>();
  items.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k)) throw malformed(`${path}[${i}]`, 'repeats an earlier item');
    seen.add(k);
  });
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

/** The payload type of a client-to-server event. */
export type ClientPayload<E extends ClientEventName> = Parameters<ClientToServerEvents[E]>[0];

const CLIENT_VALIDATORS: { readonly [E in ClientEventName]: Validator<ClientPayload<E>> } = {
  'handshake:init': handshakeInitRequest,
  'handshake:complete': handshakeCompleteRequest,
  send: sendRequest,
  ack: ackRequest,
  fetch: fetchRequest,
  'prekeys:publish': prekeysPublishRequest,
  'prekeys:claim': prekeysClaimRequest,
  'prekeys:count': prekeysCountRequest,
};

/**
 * Checks the payload of client event `event`; returns a fresh typed copy (byte fields are the
 * received buffers) or throws ProtocolError MALFORMED / TOO_LARGE whose message starts with the
 * field's path, e.g. `send.envelopes[2]: 70000 bytes, the limit is 65593`.
 *
 * @example
 * @SubscribeMessage('send')
 * async send(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<SendResult>> {
 *   const request = validateClientPayload('send', body);
 *   ...
 * }
 */
export function validateClientPayload<E extends ClientEventName>(
  event: E,
  payload: unknown,
): ClientPayload<E> {
  if (typeof event !== 'string' || !Object.hasOwn(CLIENT_VALIDATORS, event)) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'event: not a client event of this protocol');
  }
  return CLIENT_VALIDATORS[event](payload, event);
}
