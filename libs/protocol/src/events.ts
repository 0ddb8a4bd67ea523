/**
 * The typed socket.io event map shared by the relay gateway (socket.io 4.8 under
 * @nestjs/platform-socket.io) and the client (socket.io-client 4.8): an event renamed or a
 * payload changed on one side fails to compile on the other.
 *
 * Conventions:
 * - Every client-to-server event is `(payload, ack)`: the payload is a plain object (no class, no
 *   undefined-vs-absent tricks), the ack gets one `Reply`: `{ status: 'ok', ...result }` or
 *   `{ status: 'error', code, message, retryAfterMs? }`. The relay checks every payload with
 *   `validateClientPayload` (validation/) before it does anything with it.
 * - Binary travels as Uint8Array (socket.io sends it as binary attachments; Node delivers a
 *   Buffer, a browser an ArrayBuffer, which the client's reply validators turn into Uint8Array).
 * - Addresses and message ids travel as their canonical strings (address/, envelope/message-id):
 *   cheap to compare, ready to be database keys, and one string per value.
 * - Every count and size is bounded by limits.ts, on both sides.
 *
 * @example
 * // relay (NestJS gateway)
 * type RelayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
 * // client
 * const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { transports: ['websocket'] });
 * const reply = await socket.emitWithAck('send', { envelopes: [encodeEnvelope(envelope)] });
 */
import type { AddressString } from './address/address.js';
import type { MessageIdString } from './envelope/message-id.js';
import type { ProtocolErrorCode } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

export type OkReply<T extends object = object> = { readonly status: 'ok' } & T;

/** The one error shape every socket error leaves in (the relay's exception filter builds it). */
export interface ErrorReply {
  readonly status: 'error';
  readonly code: ProtocolErrorCode;
  /** What was wrong and how to fix it; never a payload byte, key or plaintext. */
  readonly message: string;
  /** With RATE_LIMITED (and UNAVAILABLE or INTERNAL when the relay is overloaded): when to try again. */
  readonly retryAfterMs?: number;
  /**
   * With CLOCK_SKEW from `handshake:init`: the relay's clock (ms since the Unix epoch), so the
   * client can tell its user or retry with its clock offset corrected. Not authenticated.
   */
  readonly serverTimeMs?: number;
}

export type Reply<T extends object = object> = OkReply<T> | ErrorReply;

/** The ack callback of an event whose success carries `T`. */
export type Ack<T extends object = object> = (reply: Reply<T>) => void;

// ---------------------------------------------------------------------------------------------
// Handshake (the messages are handshake/'s binary codecs; this is only their transport)
// ---------------------------------------------------------------------------------------------

/** `handshake:init`: the client's Init; the ack carries the relay's Response. */
export interface HandshakeInitRequest {
  readonly message: Uint8Array;
}
export interface HandshakeInitResult {
  readonly message: Uint8Array;
}

/** `handshake:complete`: the client's Complete; the ack says which address the socket now holds. */
export interface HandshakeCompleteRequest {
  readonly message: Uint8Array;
}
export interface HandshakeCompleteResult {
  readonly address: AddressString;
}

// ---------------------------------------------------------------------------------------------
// Mail
// ---------------------------------------------------------------------------------------------

/** `send`: 1..MAX_ENVELOPES_PER_SEND encoded envelopes (envelope/envelope.codec.ts). */
export interface SendRequest {
  readonly envelopes: readonly Uint8Array[];
}

/** One envelope's fate, in request order. `stored` and `duplicate` both mean "durably held". */
export type SendOutcome =
  | { readonly status: 'stored'; readonly id: MessageIdString }
  /** The relay already held an envelope with this id from this sender (a retried send). */
  | { readonly status: 'duplicate'; readonly id: MessageIdString }
  | { readonly status: 'rejected'; readonly code: ProtocolErrorCode; readonly message: string };

/** The ack of `send`, given only after every stored envelope is durable. */
export interface SendResult {
  readonly results: readonly SendOutcome[];
}

/** `ack`: ids of mail the recipient has decrypted and persisted; the relay deletes them. */
export interface AckRequest {
  readonly ids: readonly MessageIdString[];
}
export interface AckResult {
  /** How many were deleted now (ids already gone or not this socket's mail count 0). */
  readonly deleted: number;
}

/** `fetch`: a page of pending mail, oldest first. */
export interface FetchRequest {
  /** The previous page's cursor; absent for the first page. */
  readonly cursor?: string;
  /** 1..MAX_FETCH_PAGE. @default DEFAULT_FETCH_PAGE */
  readonly limit?: number;
}

/** One piece of mail as delivered: the envelope as sent, stamped by the relay. */
export interface MailItem {
  /** The encoded envelope, byte for byte as the sender sent it. */
  readonly envelope: Uint8Array;
  /** The sender's authenticated address (the socket it came from), stamped by the relay. */
  readonly sender: AddressString;
  /** When the relay stored it, ms since the Unix epoch (relay clock). */
  readonly receivedAt: number;
  /**
   * Its position in the recipient's mailbox: a decimal integer (at most 19 digits) that grows in
   * store order within one mailbox, the same in a push and in a fetch page. A client that fetched
   * up to position P knows that pushed mail above P is newer than everything it fetched.
   */
  readonly cursor: string;
}

export interface FetchResult {
  readonly mail: readonly MailItem[];
  /** Pass it to the next `fetch`; null when this page was the last. */
  readonly cursor: string | null;
}

/** Server push `mail`: new mail for an online recipient (also delivered by `fetch` until acked). */
export interface MailPush {
  readonly mail: readonly MailItem[];
}

/**
 * Why the relay sent `mail:sync`:
 * - `backlog`: this socket's write backlog passed the relay's cap, so new mail was stored but not
 *   pushed to it; the backlog has drained now.
 * - `notices`: this node may have missed other nodes' `mail:available` notices (its LISTEN
 *   connection to PostgreSQL dropped and came back), so mail stored meanwhile was not pushed.
 */
export type MailSyncReason = 'backlog' | 'notices';

/**
 * Server push `mail:sync`: mail for this socket is stored that was not pushed; `fetch` every page
 * now. Pushes that follow it on the same socket are newer than that mail.
 */
export interface MailSyncPush {
  readonly reason: MailSyncReason;
}

// ---------------------------------------------------------------------------------------------
// Prekeys (records are session/'s encodings; the relay stores them as opaque bytes)
// ---------------------------------------------------------------------------------------------

/** One prekey as published: its id (u32, unique per device and kind) and its encoded record. */
export interface PrekeyRecord {
  readonly id: number;
  readonly record: Uint8Array;
}

/**
 * `prekeys:publish`: any of the three, at least one. A signed or KEM prekey replaces the
 * current one; one-time prekeys are added (an id already held is refused).
 */
export interface PrekeysPublishRequest {
  readonly signedPrekey?: PrekeyRecord;
  readonly kemPrekey?: PrekeyRecord;
  readonly oneTimePrekeys?: readonly PrekeyRecord[];
}
export interface PrekeysPublishResult {
  /** One-time prekeys the relay now holds for this device. */
  readonly oneTimePrekeys: number;
}

/** `prekeys:claim`: a bundle for `address`; the one-time prekey in it is handed out once. */
export interface PrekeysClaimRequest {
  readonly address: AddressString;
}
export interface PrekeyBundle {
  readonly address: AddressString;
  readonly signedPrekey: PrekeyRecord;
  readonly kemPrekey: PrekeyRecord;
  /** Null when the device has run out (session setup then proceeds without one). */
  readonly oneTimePrekey: PrekeyRecord | null;
}
export interface PrekeysClaimResult {
  readonly bundle: PrekeyBundle;
}

/** `prekeys:count`: the caller's own prekey stock. The payload is `{}`. */
export type PrekeysCountRequest = Record<string, never>;
export interface PrekeysCountResult {
  readonly oneTimePrekeys: number;
  readonly hasSignedPrekey: boolean;
  readonly hasKemPrekey: boolean;
}

/** Server push `prekeys:low`: one-time prekeys fell below `threshold`; publish more. */
export interface PrekeysLowPush {
  readonly remaining: number;
  readonly threshold: number;
}

// ---------------------------------------------------------------------------------------------
// The maps
// ---------------------------------------------------------------------------------------------

export interface ClientToServerEvents {
  'handshake:init': (payload: HandshakeInitRequest, ack: Ack<HandshakeInitResult>) => void;
  'handshake:complete': (payload: HandshakeCompleteRequest, ack: Ack<HandshakeCompleteResult>) => void;
  send: (payload: SendRequest, ack: Ack<SendResult>) => void;
  ack: (payload: AckRequest, ack: Ack<AckResult>) => void;
  fetch: (payload: FetchRequest, ack: Ack<FetchResult>) => void;
  'prekeys:publish': (payload: PrekeysPublishRequest, ack: Ack<PrekeysPublishResult>) => void;
  'prekeys:claim': (payload: PrekeysClaimRequest, ack: Ack<PrekeysClaimResult>) => void;
  'prekeys:count': (payload: PrekeysCountRequest, ack: Ack<PrekeysCountResult>) => void;
}

export interface ServerToClientEvents {
  mail: (payload: MailPush) => void;
  'mail:sync': (payload: MailSyncPush) => void;
  'prekeys:low': (payload: PrekeysLowPush) => void;
}

/**
 * New mail on one node for a recipient whose socket is on another: the recipient and the store
 * cursors of the new rows, never the ciphertext. The node holding the socket reads those rows
 * from the shared store and pushes them.
 */
export interface MailNotice {
  readonly recipient: AddressString;
  /** Store cursors (decimal strings) of the new rows, oldest first. */
  readonly cursors: readonly string[];
}

/**
 * Between relay nodes (`io.serverSideEmit`, through the adapter). `mail:available` carries
 * notices, not mail: the adapter's messages stay small and free of ciphertext (the PostgreSQL
 * adapter would write a binary payload to its attachment table and every other node would read
 * it back), and the node holding the recipient's socket reads the mail from the store.
 */
export interface InterServerEvents {
  'mail:available': (notices: readonly MailNotice[]) => void;
}

/**
 * Per-socket data the relay keeps (visible to other nodes via `fetchSockets()`, so nothing
 * secret: handshake secrets stay in the gateway's memory for the socket's lifetime).
 */
export interface SocketData {
  /** Set by `handshake:complete`; absent until the socket is authenticated. */
  address?: AddressString;
  /** When the handshake completed, ms since the Unix epoch. */
  authenticatedAt?: number;
}

/** Every client-to-server event name: the relay refuses any other (docs/protocol.md, "Socket events"). */
export const CLIENT_EVENTS = Object.freeze([
  'handshake:init',
  'handshake:complete',
  'send',
  'ack',
  'fetch',
  'prekeys:publish',
  'prekeys:claim',
  'prekeys:count',
] as const satisfies readonly (keyof ClientToServerEvents)[]);

export type ClientEventName = keyof ClientToServerEvents;

// Compile-time check that CLIENT_EVENTS lists every event of the map.
const _everyEventListed: [Exclude<ClientEventName, (typeof CLIENT_EVENTS)[number]>] extends [never]
  ? true
  : false = true;

/** Events a socket may send before its handshake completed; all others need an address. */
export const UNAUTHENTICATED_EVENTS: readonly ClientEventName[] = Object.freeze([
  'handshake:init',
  'handshake:complete',
]);

/** The room every socket of one address joins once authenticated; `mail` is emitted to it. */
export function mailboxRoom(address: AddressString): string {
  return `mailbox:${address}`;
}
