/**
 * The connection to the relay: one socket.io-client socket (WebSocket transport only), the
 * client <-> relay handshake (docs/protocol.md, "Client <-> relay handshake") run again with a
 * fresh HandshakeClient on every (re)connect, reconnection with capped exponential backoff and
 * full jitter (backoff.ts), and typed requests whose replies are checked with `validateReply`
 * before anything reads them (pushes with `validateServerPush`).
 *
 * socket.io's own reconnection is switched off: its delay is "exponential with a jitter factor",
 * not full jitter, and a reconnect must rerun the handshake anyway. Requests never wait in
 * socket.io's send buffer: a request made while the socket is down fails at once with
 * NOT_CONNECTED, and every pending request fails with NOT_CONNECTED when the socket drops.
 */
import type { IdentityKeyPair, IdentityPublicKey } from '@usm/crypto';
import {
  type AddressString,
  type ClientEventName,
  type ClientResult,
  type ClientToServerEvents,
  type Clock,
  type ErrorReply,
  HandshakeClient,
  ProtocolError,
  ProtocolErrorCode,
  type ServerEventName,
  type ServerPayload,
  type ServerToClientEvents,
  UNAUTHENTICATED_EVENTS,
  validateReply,
  validateServerPush,
  socketParser,
  MAX_FETCH_PAGE,
} from '@usm/protocol';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { Backoff, type BackoffOptions } from './backoff.js';
import { ClientError, ClientErrorCode } from './errors.js';

export type RelaySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Makes the (not yet connected) socket. Replaceable in tests; the default is socket.io-client's `io`. */
export type SocketFactory = (url: string, options: Partial<ManagerOptions & SocketOptions>) => RelaySocket;

export const defaultSocketFactory: SocketFactory = (url, options) => io(url, options);

/** Where the connection stands, as the `connection` event reports it. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface ConnectionStatus {
  readonly state: ConnectionState;
  /** Why it is disconnected (socket.io's reason, or the handshake failure's code). */
  readonly reason?: string;
}

export interface RelayConnectionOptions {
  readonly url: string;
  readonly identity: IdentityKeyPair;
  readonly relayIdentity: IdentityPublicKey;
  /** Our address; the relay must bind the socket to exactly this one. */
  readonly address: AddressString;
  readonly clock: Clock;
  readonly backoff?: BackoffOptions;
  /** Reconnect after a drop. @default true */
  readonly reconnect?: boolean;
  /** How long a request waits for its ack. @default 10000 */
  readonly requestTimeoutMs?: number;
  readonly socketFactory?: SocketFactory;
  /** Called once the handshake completed on a (re)connect; the connection is usable. */
  readonly onAuthenticated: () => void;
  readonly onStatus: (status: ConnectionStatus) => void;
  readonly onError: (err: ClientError) => void;
  readonly onPush: <E extends ServerEventName>(event: E, payload: ServerPayload<E>) => void;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Binary attachments the client puts in (and asks for in) one event: envelopes per send, mail per
 * fetch page, one-time prekeys per publish. The protocol's per-event limits (MAX_FETCH_PAGE,
 * MAX_ENVELOPES_PER_SEND) are 50; both ends use @usm/protocol's `socketParser`, whose decoder
 * takes up to MAX_SOCKET_BINARY_ATTACHMENTS (socket.io-parser's stock decoder stops at 10 and
 * closes the connection). A full prekey top-up is one publish, well inside the relay's default
 * upload rate limit (6 per 10 minutes).
 */
export const MAX_BINARY_ATTACHMENTS = MAX_FETCH_PAGE;

/**
 * Every server push, each subscribed on the socket: a push added to the protocol's
 * ServerToClientEvents fails to compile here until it is listed (and in `onPush`'s handlers).
 */
const SERVER_PUSHES = Object.keys({
  mail: true,
  'mail:sync': true,
  'prekeys:low': true,
} satisfies Record<ServerEventName, true>) as ServerEventName[];

/** What the client's components ask of the connection. */
export type RelayRequests = Pick<RelayConnection, 'connected' | 'request'>;

interface Pending {
  readonly reject: (err: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

function notConnected(what: string): ClientError {
  return new ClientError(ClientErrorCode.NotConnected, `${what}: not connected to the relay`);
}

/** The ClientError for an error reply of the relay. */
export function relayErrorOf(event: ClientEventName, reply: ErrorReply): ClientError {
  const cause = new ProtocolError(reply.code, reply.message);
  const text = `the relay refused '${event}' (${reply.code}): ${reply.message}`;
  switch (reply.code) {
    case ProtocolErrorCode.RateLimited:
      return new ClientError(ClientErrorCode.RateLimited, text, {
        cause,
        ...(reply.retryAfterMs === undefined ? {} : { retryAfterMs: reply.retryAfterMs }),
      });
    case ProtocolErrorCode.ClockSkew: {
      const stated = (reply as { serverTimeMs?: unknown }).serverTimeMs;
      // Older relays carry the time only in the message text ("relay time is N ms since the epoch").
      const parsed = /relay time is (\d{1,16}) ms/.exec(reply.message)?.[1];
      const relayTimeMs =
        typeof stated === 'number' ? stated : parsed === undefined ? undefined : Number(parsed);
      return new ClientError(
        ClientErrorCode.ClockSkew,
        `the relay refused the handshake: this device's clock differs from the relay's by more than the ` +
          `accepted window${relayTimeMs === undefined ? '' : ` (relay time ${new Date(relayTimeMs).toISOString()})`}; ` +
          'set the device clock',
        { cause, ...(relayTimeMs === undefined ? {} : { relayTimeMs }) },
      );
    }
    case ProtocolErrorCode.Unauthenticated:
      return new ClientError(ClientErrorCode.NotConnected, text, { cause });
    default:
      return new ClientError(ClientErrorCode.RelayError, text, {
        cause,
        ...(reply.retryAfterMs === undefined ? {} : { retryAfterMs: reply.retryAfterMs }),
      });
  }
}

/**
 * @example
 * const conn = new RelayConnection({ url, identity, relayIdentity, address, clock, onAuthenticated, ... });
 * conn.start();
 * const { oneTimePrekeys } = await conn.request('prekeys:count', {});
 */
export class RelayConnection {
  readonly #o: RelayConnectionOptions;
  readonly #backoff: Backoff;
  readonly #timeoutMs: number;
  readonly #pending = new Set<Pending>();
  #socket: RelaySocket | undefined;
  #authenticated = false;
  #stopped = true;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Counts socket connections, so a handshake that outlived its socket does nothing. */
  #epoch = 0;

  constructor(options: RelayConnectionOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.backoff);
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** True while the socket is up and its handshake completed. */
  get connected(): boolean {
    return this.#authenticated && this.#socket?.connected === true;
  }

  /** Opens the socket (idempotent); reconnects after drops until `stop()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const socket = (this.#o.socketFactory ?? defaultSocketFactory)(this.#o.url, {
      transports: ['websocket'],
      // The relay's pushes and fetch pages carry up to 50 envelopes (socket.io-parser's default is 10).
      parser: socketParser,
      reconnection: false,
      autoConnect: false,
      forceNew: true,
    });
    this.#socket = socket;
    socket.on('connect', () => void this.#handshake(socket));
    socket.on('disconnect', (reason) => this.#dropped(String(reason)));
    socket.on('connect_error', (err) => this.#dropped(`connect error: ${err.message}`));
    const on = socket.on.bind(socket) as (event: string, listener: (payload: unknown) => void) => void;
    for (const event of SERVER_PUSHES) on(event, (payload) => this.#push(event, payload));
    this.#o.onStatus({ state: 'connecting' });
    socket.connect();
  }

  /** Closes the socket and stops reconnecting; pending requests fail with NOT_CONNECTED. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    this.#authenticated = false;
    this.#epoch++;
    this.#failPending('the client was closed');
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this.#o.onStatus({ state: 'disconnected', reason: 'closed' });
  }

  /**
   * Sends client event `event` and returns its checked success result. Throws ClientError:
   * NOT_CONNECTED (no authenticated socket, dropped, or no ack in time), RATE_LIMITED,
   * RELAY_ERROR (cause: the relay's ProtocolError), PROTOCOL_VIOLATION (a malformed reply).
   */
  async request<E extends ClientEventName>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<ClientResult<E>> {
    if (!this.#authenticated && !UNAUTHENTICATED_EVENTS.includes(event)) throw notConnected(event);
    const socket = this.#socket;
    if (!socket?.connected) throw notConnected(event);
    const raw = await this.#emit(socket, event, payload);
    let reply;
    try {
      reply = validateReply(event, raw);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.ProtocolViolation,
        `the relay's reply to '${event}' breaks the protocol: ${ProtocolError.is(err) ? err.message : 'invalid'}`,
        { cause: err },
      );
    }
    if (reply.status === 'error') throw relayErrorOf(event, reply);
    const { status: _ok, ...result } = reply;
    return result as unknown as ClientResult<E>;
  }

  #emit(socket: RelaySocket, event: ClientEventName, payload: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        reject,
        timer: setTimeout(() => {
          this.#pending.delete(entry);
          reject(
            new ClientError(
              ClientErrorCode.NotConnected,
              `'${event}' got no reply within ${this.#timeoutMs} ms: the relay is slow or the connection is stale`,
            ),
          );
        }, this.#timeoutMs),
      };
      this.#pending.add(entry);
      const emit = socket.emit.bind(socket) as (e: string, p: unknown, ack: (reply: unknown) => void) => void;
      emit(event, payload, (reply: unknown) => {
        clearTimeout(entry.timer);
        if (this.#pending.delete(entry)) resolve(reply);
      });
    });
  }

  #failPending(why: string): void {
    for (const p of this.#pending) {
      clearTimeout(p.timer);
      p.reject(notConnected(why));
    }
    this.#pending.clear();
  }

  async #handshake(socket: RelaySocket): Promise<void> {
    const epoch = ++this.#epoch;
    const hs = new HandshakeClient({
      identity: this.#o.identity,
      relayIdentity: this.#o.relayIdentity,
      clock: this.#o.clock,
    });
    try {
      const response = await this.request('handshake:init', { message: hs.start() });
      let complete: Uint8Array;
      try {
        const done = await hs.receiveResponse(response.message);
        done.result.trafficKeys.wipe();
        complete = done.complete;
      } catch (err) {
        throw new ClientError(
          ClientErrorCode.HandshakeFailed,
          `the relay failed the handshake: ${ProtocolError.is(err) ? err.message : 'unexpected failure'}; ` +
            'check that relayIdentityKey is the key of this relay',
          { cause: err },
        );
      }
      const bound = await this.request('handshake:complete', { message: complete });
      if (bound.address !== this.#o.address) {
        throw new ClientError(
          ClientErrorCode.ProtocolViolation,
          "the relay bound the socket to another address than this client's",
        );
      }
      if (epoch !== this.#epoch || this.#stopped) return;
      this.#authenticated = true;
      this.#backoff.reset();
      this.#o.onStatus({ state: 'connected' });
      this.#o.onAuthenticated();
    } catch (err) {
      if (epoch !== this.#epoch || this.#stopped) return;
      const error = ClientError.is(err)
        ? err
        : new ClientError(ClientErrorCode.HandshakeFailed, 'the handshake failed unexpectedly', {
            cause: err,
          });
      // A dropped socket during the handshake is reported by 'disconnect'; anything else here.
      if (!ClientError.is(error, ClientErrorCode.NotConnected)) this.#o.onError(error);
      if (socket.connected)
        socket.disconnect(); // -> 'disconnect' -> retry with backoff
      else this.#dropped(error.code);
    }
  }

  #dropped(reason: string): void {
    if (this.#stopped) return;
    this.#epoch++;
    this.#authenticated = false;
    this.#failPending(`the connection dropped (${reason})`);
    this.#o.onStatus({ state: 'disconnected', reason });
    if (this.#o.reconnect === false || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#stopped || !this.#socket || this.#socket.connected) return;
      this.#o.onStatus({ state: 'connecting' });
      this.#socket.connect();
    }, this.#backoff.next());
  }

  #push<E extends ServerEventName>(event: E, raw: unknown): void {
    if (!this.#authenticated) return;
    let payload: ServerPayload<E>;
    try {
      payload = validateServerPush(event, raw);
    } catch (err) {
      this.#o.onError(
        new ClientError(
          ClientErrorCode.ProtocolViolation,
          `the relay's '${event}' push breaks the protocol: ${ProtocolError.is(err) ? err.message : 'invalid'}`,
          { cause: err },
        ),
      );
      return;
    }
    this.#o.onPush(event, payload);
  }
}
