/**
 * The relay's socket.io gateway (docs/protocol.md, "Socket events"): the handshake binds a socket
 * to one identity's address, then that socket may send envelopes to anyone, and fetch, ack and
 * publish prekeys for its own address only.
 *
 * Who may do what, and where it is enforced:
 * - At connect (engine.io `allowRequest`, before any socket exists): a browser Origin outside
 *   `socket.allowedOrigins` is refused with HTTP 403. Nest guards do not run on connect.
 * - Every packet (socket.io per-socket middleware, before any handler or listener): an event name
 *   outside CLIENT_EVENTS (`error`, `__proto__`, numbers, ...) is refused with MALFORMED and
 *   dropped; any event but the two handshake events on an unauthenticated socket is refused with
 *   UNAUTHENTICATED, dropped, and the socket is closed; an event without an acknowledgement is
 *   dropped. Nothing refused reaches a handler.
 * - An unauthenticated socket is closed `handshake.timeoutMs` after it connected; a failed
 *   handshake closes it at once (after the error reply).
 * - Handlers take the address from `socket.data.address` (set only by `handshake:complete`), never
 *   from the payload: the sender of an envelope is stamped, mail is fetched and acked for that
 *   address only, prekeys are published for it only.
 * - Rate limits: RelayRateLimitGuard per handler (`send` costs one point per envelope).
 * - Errors: RelayExceptionFilter, one reply shape.
 *
 * Sends are acknowledged only after the store's transaction committed; then the mail is pushed to
 * `mailboxRoom(recipient)` when the recipient has a socket on this node, otherwise the other nodes
 * get a `mail:available` notice (recipient and store cursors, no ciphertext) through the adapter
 * and the node holding the socket reads the rows from the store and pushes them. A socket whose
 * write backlog reached its cap gets no pushes until it drained, then one `mail:sync` (it fetches
 * the mail it missed): PushFlowControl. On shutdown the gateway refuses new sends (UNAVAILABLE),
 * waits for the handlers in flight, then closes its sockets.
 */
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
  type Type,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { createAdapter } from '@socket.io/postgres-adapter';
import { ready } from '@usm/crypto';
import {
  type AckResult,
  type AddressString,
  CLIENT_EVENTS,
  type ClientToServerEvents,
  DEFAULT_FETCH_PAGE,
  type ErrorReply,
  type FetchResult,
  type HandshakeCompleteResult,
  type HandshakeInitResult,
  type InterServerEvents,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  type MailItem,
  type MailNotice,
  type MailSyncReason,
  type PrekeyRecord,
  type PrekeysClaimResult,
  type PrekeysCountResult,
  type PrekeysPublishResult,
  ProtocolError,
  ProtocolErrorCode,
  type Reply,
  RelayHandshake,
  SOCKET_MAX_HTTP_BUFFER_BYTES,
  type SendOutcome,
  type SendResult,
  type ServerToClientEvents,
  type SocketData,
  UNAUTHENTICATED_EVENTS,
  addressOf,
  formatAddress,
  formatMessageId,
  mailboxRoom,
  parseAddress,
  parseMessageId,
  peekEnvelopeRoute,
  validateClientPayload,
  socketParser,
} from '@usm/protocol';
import type { IncomingMessage } from 'node:http';
import type pg from 'pg';
import type { Server, ServerOptions, Socket } from 'socket.io';
import { corkWritesPerTurn } from './socket/cork-writes.js';
import {
  InjectMessageStore,
  type MessageStore,
  type OutgoingEnvelope,
} from './mail/message-store.interface.js';
import { RelayMetrics } from './metrics/metrics.service.js';
import {
  PrekeyDirectoryService,
  type PrekeyUpload,
  type SignedPrekey,
} from './prekeys/prekey-directory.service.js';
import { PushFlowControl } from './push/push-flow-control.js';
import { RelayRateLimit, RelayRateLimitGuard } from './rate-limit/rate-limit.guard.js';
import { InjectRelayClock, type RelayClock } from './relay-clock.js';
import { RelayDatabase } from './database/relay-database.js';
import { RelayExceptionFilter, toErrorReply } from './relay-exception.filter.js';
import { RELAY_OPTIONS } from './relay.constants.js';
import { RelayError } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';
import type { ResolvedRelayOptions } from './relay.options.js';
import { type HandshakeReplayStore, InjectHandshakeReplayStore } from './handshake/replay-store.service.js';

export type RelayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type RelaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** One recipient's new mail from one send: the items to push and their store cursors. */
interface Push {
  mail: MailItem[];
  cursors: string[];
}

/**
 * One recipient's mail as `mail` events its client accepts, in order: at most MAX_FETCH_PAGE
 * items and MAX_FETCH_PAGE_BYTES of envelopes each (a fetch page's bounds; one item always fits).
 */
export function mailEvents(items: readonly MailItem[]): MailItem[][] {
  const events: MailItem[][] = [];
  let event: MailItem[] = [];
  let bytes = 0;
  for (const item of items) {
    const full = event.length === MAX_FETCH_PAGE || bytes + item.envelope.length > MAX_FETCH_PAGE_BYTES;
    if (event.length > 0 && full) {
      events.push(event);
      event = [];
      bytes = 0;
    }
    event.push(item);
    bytes += item.envelope.length;
  }
  if (event.length > 0) events.push(event);
  return events;
}

/**
 * Notices in batches of at most `maxCursors` cursors (the most one store read takes) and about
 * 6,000 bytes of JSON, under the PostgreSQL adapter's 8,000-byte NOTIFY threshold (above it the
 * adapter writes an attachment row, which is what the notices avoid). A recipient with more
 * cursors than that is split over several notices.
 */
export function noticeBatches(notices: readonly MailNotice[], maxCursors: number): MailNotice[][] {
  const batches: MailNotice[][] = [];
  let batch: MailNotice[] = [];
  let cursors = 0;
  let bytes = 0;
  const flush = () => {
    if (batch.length > 0) batches.push(batch);
    batch = [];
    cursors = 0;
    bytes = 0;
  };
  for (const { recipient, cursors: all } of notices) {
    for (let i = 0; i < all.length;) {
      const room = Math.min(maxCursors - cursors, all.length - i);
      const size = recipient.length + 32 + 24 * room;
      if (room <= 0 || (batch.length > 0 && bytes + size > 6_000)) {
        flush();
        continue;
      }
      batch.push({ recipient, cursors: all.slice(i, i + room) });
      cursors += room;
      bytes += size;
      i += room;
    }
  }
  flush();
  return batches;
}

/** What the gateway keeps per socket until it is authenticated, in this process (not `socket.data`). */
interface SocketState {
  handshake?: RelayHandshake;
  timer?: ReturnType<typeof setTimeout>;
}

const KNOWN_EVENTS: ReadonlySet<string> = new Set(CLIENT_EVENTS);
const OPEN_EVENTS: ReadonlySet<string> = new Set(UNAUTHENTICATED_EVENTS);
const NO_SIGNATURE = new Uint8Array(0);

/**
 * Pauses before a failed `pg_notify` is sent again: the failure is usually one terminated
 * connection, and the next try takes another from the pool.
 */
const NOTIFY_RETRY_DELAYS_MS = [50, 250, 1_000, 3_000] as const;

/** Server options of each generated gateway class, filled in by its constructor (see createRelayGateway). */
const SERVER_OPTIONS = new WeakMap<object, Partial<ServerOptions>>();

/**
 * The gateway's behaviour. MessengerRelayModule registers a subclass made by `createRelayGateway()`
 * (one per module instance, so two relays in one process keep their own socket options); inject it
 * by this class.
 */
@Injectable()
@UseFilters(RelayExceptionFilter)
@UseGuards(RelayRateLimitGuard)
export class RelayGateway
  implements
    OnGatewayInit,
    OnGatewayConnection,
    OnGatewayDisconnect,
    OnModuleInit,
    OnModuleDestroy,
    BeforeApplicationShutdown
{
  private readonly logger = new Logger('MessengerRelay');
  private readonly sockets = new Map<string, SocketState>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private server: RelayServer | undefined;
  private draining = false;
  /** Set when the shutdown hook closes the adapter: its late connects get no connection. */
  private adapterClosed = false;
  /** Settles when the adapter's released connections have ended (see adapterPool). */
  private readonly adapterReleases = new Set<Promise<void>>();

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions,
    @InjectRelayClock() private readonly clock: RelayClock,
    @InjectMessageStore() private readonly store: MessageStore,
    @InjectHandshakeReplayStore() private readonly replayStore: HandshakeReplayStore,
    private readonly directory: PrekeyDirectoryService,
    private readonly metrics: RelayMetrics,
    private readonly db: RelayDatabase,
    private readonly pushFlow: PushFlowControl,
  ) {
    // Nest reads the @WebSocketGateway options object when it creates the server, after this
    // constructor: fill in the generated subclass's (empty) options from the module's options.
    const target = SERVER_OPTIONS.get(new.target);
    if (target) Object.assign(target, this.serverOptions());
  }

  /** The socket.io server (after Nest created it): `io.local.fetchSockets()` and the like. */
  get io(): RelayServer | undefined {
    return this.server;
  }

  /** socket.io server options from the module options. */
  serverOptions(): Partial<ServerOptions> {
    const { path, allowedOrigins } = this.options.socket;
    const allowed = new Set(allowedOrigins);
    return {
      path,
      serveClient: false,
      transports: ['websocket', 'polling'],
      maxHttpBufferSize: SOCKET_MAX_HTTP_BUFFER_BYTES,
      // Up to MAX_SOCKET_BINARY_ATTACHMENTS binary parts per packet (socket.io-parser's default is 10).
      parser: socketParser,
      cors: { origin: allowedOrigins.length === 0 ? true : allowedOrigins, credentials: false },
      allowRequest: (
        req: IncomingMessage,
        callback: (err: string | null | undefined, ok: boolean) => void,
      ) => {
        const origin = req.headers.origin;
        if (allowed.size === 0 || origin === undefined || allowed.has(origin)) return callback(null, true);
        callback('origin not allowed', false);
      },
    };
  }

  async onModuleInit(): Promise<void> {
    await ready();
  }

  afterInit(server: RelayServer): void {
    this.server = server;
    server.on('mail:available', (notices) => void this.onMailAvailable(notices));
    if (this.options.socket.adapter === 'postgres') {
      const logFailure = (err: Error) => {
        const code = (err as { code?: unknown }).code;
        this.logger.warn(M.adapterFailed(typeof code === 'string' ? code : err.constructor.name));
      };
      server.adapter(
        createAdapter(this.adapterPool(logFailure), {
          tableName: 'socket_io_attachments',
          errorHandler: logFailure,
        }) as unknown as Parameters<RelayServer['adapter']>[0],
      );
    }
  }

  /**
   * The relay's pool as the adapter sees it. The adapter keeps one client checked out for LISTEN
   * and attaches no 'error' listener to it; pg-pool removes its own from checked-out clients, so a
   * lost database connection would be an unhandled 'error' that ends the process. Here that client
   * gets a listener that logs and hands it back as broken (freeing its pool slot); the adapter
   * reconnects on the 'end' that follows.
   *
   * A client the adapter releases (on close) is discarded, never pooled: it is still LISTENing.
   * pg-pool ends it without waiting (its `end()` resolves before the sockets close), so the
   * shutdown hook waits for the pool's 'remove' of each one: otherwise a database stopped right
   * after the app (the sample app's embedded PostgreSQL) terminates it and its 'error' is logged.
   *
   * Notices must not be lost to a dropped connection (docs/relay.md, "Cross-node notices"):
   * - Publishing: the adapter sends each notice as one `pg_notify` on a pooled connection and only
   *   logs a failure. A failed `pg_notify` is sent again (NOTIFY_RETRY_DELAYS_MS) on another
   *   connection; a notice that arrives twice pushes mail twice, which clients drop by message id.
   * - Listening: notices sent while this node's LISTEN connection was down are gone. Every LISTEN
   *   after the first one (a reconnect) is followed by `mail:sync` to this node's authenticated
   *   sockets, so their clients fetch what was stored meanwhile.
   */
  private adapterPool(logFailure: (err: Error) => void): pg.Pool {
    const pool = this.db.pgPool;
    let listens = 0;
    const query = (pool.query as (...a: unknown[]) => Promise<unknown>).bind(pool);
    return {
      query: async (...args: unknown[]) => {
        if (!(typeof args[0] === 'string' && args[0].includes('pg_notify('))) return query(...args);
        for (let attempt = 0; ; attempt++) {
          try {
            return await query(...args);
          } catch (err) {
            const delay = NOTIFY_RETRY_DELAYS_MS[attempt];
            if (delay === undefined || this.adapterClosed) throw err;
            await new Promise((resolve) => setTimeout(resolve, delay));
          }
        }
      },
      connect: async () => {
        const client = await pool.connect();
        const clientQuery = (client.query as (...a: unknown[]) => unknown).bind(client);
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const result = clientQuery(...args);
          if (typeof args[0] === 'string' && args[0].startsWith('LISTEN ') && result instanceof Promise) {
            void result.then(
              () => {
                if (++listens > 1) this.syncLocalSockets('notices');
              },
              () => undefined,
            );
          }
          return result;
        };
        if (this.adapterClosed) {
          // A reconnect that raced the shutdown: give the slot back and leave the adapter waiting
          // (a rejection would schedule yet another reconnect, on a pool about to end).
          client.release(true);
          return new Promise<never>(() => undefined);
        }
        const release = client.release.bind(client);
        let released = false;
        client.release = (err?: Error | boolean) => {
          if (released) return;
          released = true;
          const ended = new Promise<void>((resolve) => {
            const onRemove = (removed: pg.PoolClient) => {
              if (removed !== client) return;
              pool.off('remove', onRemove);
              this.adapterReleases.delete(ended);
              resolve();
            };
            pool.on('remove', onRemove);
          });
          this.adapterReleases.add(ended);
          release(err ?? true);
        };
        client.on('error', (err: Error) => {
          logFailure(err);
          client.release(err);
        });
        return client;
      },
    } as unknown as pg.Pool;
  }

  /**
   * Tells every authenticated socket on this node to fetch (`mail:sync`): mail may be stored for
   * it that this node did not push.
   */
  private syncLocalSockets(reason: MailSyncReason): void {
    const server = this.server;
    if (!server || this.adapterClosed) return;
    const told = this.syncSockets(server.of('/').sockets.values(), reason);
    this.logger.log(M.noticesResumed(told));
  }

  /** Sends `mail:sync` to each authenticated socket of `sockets`; returns how many. */
  private syncSockets(sockets: Iterable<RelaySocket>, reason: MailSyncReason): number {
    let told = 0;
    for (const socket of sockets) {
      if (!socket.data.address) continue;
      socket.emit('mail:sync', { reason });
      this.metrics.mailSync(reason);
      told++;
    }
    return told;
  }

  /**
   * Closes the socket.io adapter of every namespace (the last one releases the LISTEN client) and
   * waits until those connections have ended. Runs before the relay's pool ends; Nest's own close
   * of the server later finds the adapter closed.
   */
  private async closeAdapter(): Promise<void> {
    if (!this.server || this.options.socket.adapter !== 'postgres' || this.adapterClosed) return;
    this.adapterClosed = true;
    for (const nsp of this.server._nsps.values()) await nsp.adapter.close();
    await Promise.all(this.adapterReleases);
  }

  handleConnection(socket: RelaySocket): void {
    this.metrics.connectionOpened();
    // One write per socket per event-loop turn (cork-writes.ts), also after an upgrade from polling.
    corkWritesPerTurn(socket.conn.transport);
    socket.conn.on('upgrade', (transport: unknown) => corkWritesPerTurn(transport));
    // socket.io emits 'error' on a socket for an invalid packet; without a listener that throws.
    socket.on('error', () => socket.disconnect(true));
    socket.use((packet, next) => this.admit(socket, packet as unknown[], next));
    const state: SocketState = {};
    state.timer = setTimeout(() => {
      if (!socket.data.address) socket.disconnect(true);
    }, this.options.handshake.timeoutMs);
    state.timer.unref?.();
    this.sockets.set(socket.id, state);
    if (this.draining) socket.disconnect(true);
  }

  handleDisconnect(socket: RelaySocket): void {
    this.metrics.connectionClosed();
    const state = this.sockets.get(socket.id);
    if (state?.timer) clearTimeout(state.timer);
    this.sockets.delete(socket.id);
  }

  /** The first shutdown hook: from here on, sends are refused with UNAVAILABLE (nothing stored). */
  onModuleDestroy(): void {
    this.draining = true;
  }

  /**
   * Lets the handlers in flight finish (stores commit, acks go out), closes this node's sockets,
   * then the adapter and its LISTEN connection (before the relay's pool ends).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    // Their replies are sent from promise callbacks: let those run before the sockets close.
    await new Promise((resolve) => setImmediate(resolve));
    for (const state of this.sockets.values()) if (state.timer) clearTimeout(state.timer);
    this.server?.local.disconnectSockets(true);
    await this.closeAdapter();
  }

  // -------------------------------------------------------------------------------------------
  // Handshake
  // -------------------------------------------------------------------------------------------

  @RelayRateLimit('handshake')
  @SubscribeMessage('handshake:init')
  handshakeInit(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<HandshakeInitResult>> {
    return this.track(async () => {
      if (socket.data.address)
        throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.alreadyAuthenticated());
      try {
        const { message } = validateClientPayload('handshake:init', body);
        const state = this.stateOf(socket);
        if (state.handshake) {
          throw new ProtocolError(
            ProtocolErrorCode.UnexpectedMessage,
            'handshake: one handshake:init per connection',
          );
        }
        const { skewWindowMs, replayRetentionMs } = this.options.handshake;
        state.handshake = new RelayHandshake({
          identity: this.options.identity,
          replayStore: this.replayStore,
          clock: this.clock,
          skewWindowMs,
          replayRetentionMs,
        });
        return { status: 'ok', message: await state.handshake.receiveInit(message) };
      } catch (err) {
        this.handshakeFailed(socket);
        throw err;
      }
    });
  }

  @SubscribeMessage('handshake:complete')
  handshakeComplete(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<HandshakeCompleteResult>> {
    return this.track(async () => {
      if (socket.data.address)
        throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.alreadyAuthenticated());
      try {
        const { message } = validateClientPayload('handshake:complete', body);
        const state = this.stateOf(socket);
        if (!state.handshake) {
          throw new ProtocolError(
            ProtocolErrorCode.UnexpectedMessage,
            'handshake: handshake:complete before handshake:init',
          );
        }
        const result = await state.handshake.receiveComplete(message);
        // The relay does not encrypt frames (the socket runs over TLS): the traffic keys are not kept.
        result.trafficKeys.wipe();
        state.handshake = undefined;
        // One device per identity until device linking exists (docs/protocol.md, Addresses).
        const address = formatAddress(addressOf(result.peerIdentity));
        if (!socket.connected) return { status: 'ok', address };
        if (state.timer) clearTimeout(state.timer);
        // Nothing is left to keep for an authenticated socket (its idle memory is measured).
        this.sockets.delete(socket.id);
        socket.data.address = address;
        socket.data.authenticatedAt = this.clock.now();
        await socket.join(mailboxRoom(address));
        this.metrics.handshake(true);
        return { status: 'ok', address };
      } catch (err) {
        this.handshakeFailed(socket);
        throw err;
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Mail
  // -------------------------------------------------------------------------------------------

  @RelayRateLimit('send')
  @SubscribeMessage('send')
  send(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<SendResult>> {
    return this.track(async () => {
      const sender = this.addressOf(socket);
      const { envelopes } = validateClientPayload('send', body);
      if (this.draining) throw new ProtocolError(ProtocolErrorCode.Unavailable, M.shuttingDown());

      const results: SendOutcome[] = new Array<SendOutcome>(envelopes.length);
      const routed: { index: number; envelope: OutgoingEnvelope }[] = [];
      envelopes.forEach((bytes, index) => {
        try {
          const route = peekEnvelopeRoute(bytes);
          routed.push({
            index,
            envelope: { recipient: formatAddress(route.recipient), messageId: route.id, envelope: bytes },
          });
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          results[index] = { status: 'rejected', code: err.code, message: err.message };
        }
      });

      // Resolves only after the transaction committed: the ack below is never ahead of the data.
      const stored =
        routed.length > 0
          ? await this.store.store(
              sender,
              routed.map((r) => r.envelope),
            )
          : [];
      const pushes = new Map<string, Push>();
      stored.forEach((result, i) => {
        const { index, envelope } = routed[i] as (typeof routed)[number];
        if (result.status === 'rejected') {
          results[index] = {
            status: 'rejected',
            code: ProtocolErrorCode.QuotaExceeded,
            message: result.message,
          };
          return;
        }
        results[index] = { status: result.status, id: formatMessageId(result.messageId) };
        if (result.status === 'stored') {
          const push = pushes.get(result.recipient) ?? { mail: [], cursors: [] };
          push.mail.push({
            envelope: envelope.envelope,
            sender,
            receivedAt: result.createdAt,
            cursor: result.cursor,
          });
          push.cursors.push(result.cursor);
          pushes.set(result.recipient, push);
        }
      });
      this.push(pushes);
      return { status: 'ok', results };
    });
  }

  @SubscribeMessage('ack')
  ack(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<AckResult>> {
    return this.track(async () => {
      const recipient = this.addressOf(socket);
      const { ids } = validateClientPayload('ack', body);
      const bytes = ids.map((id) => parseMessageId(id));
      const chunk = this.options.mail.maxAcksPerCall;
      let deleted = 0;
      for (let i = 0; i < bytes.length; i += chunk) {
        deleted += await this.store.ack(recipient, bytes.slice(i, i + chunk));
      }
      return { status: 'ok', deleted };
    });
  }

  @RelayRateLimit('fetch')
  @SubscribeMessage('fetch')
  fetch(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<FetchResult>> {
    return this.track(async () => {
      const recipient = this.addressOf(socket);
      const { cursor, limit } = validateClientPayload('fetch', body);
      const n = Math.min(limit ?? DEFAULT_FETCH_PAGE, this.options.mail.maxFetchPage);
      const page = await this.store.fetch(recipient, cursor ?? null, n);
      const mail: MailItem[] = [];
      let bytes = 0;
      let last: string | null = null;
      for (const m of page.messages) {
        // A page stays within one event's binary budget, but always carries at least one item.
        if (mail.length > 0 && bytes + m.envelope.length > MAX_FETCH_PAGE_BYTES) break;
        mail.push({
          envelope: m.envelope,
          sender: m.sender as AddressString,
          receivedAt: m.createdAt,
          cursor: m.cursor,
        });
        bytes += m.envelope.length;
        last = m.cursor;
      }
      this.metrics.message('delivered', mail.length);
      const more = page.hasMore || mail.length < page.messages.length;
      return { status: 'ok', mail, cursor: more ? last : null };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Prekeys (records are @usm/protocol's session/ encodings, kept as opaque bytes)
  // -------------------------------------------------------------------------------------------

  @RelayRateLimit('prekeyUpload')
  @SubscribeMessage('prekeys:publish')
  publishPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysPublishResult>> {
    return this.track(async () => {
      const owner = this.addressOf(socket);
      const request = validateClientPayload('prekeys:publish', body);
      const signed = (r: PrekeyRecord): SignedPrekey => ({
        keyId: r.id,
        publicKey: r.record,
        signature: NO_SIGNATURE,
      });
      const upload: PrekeyUpload = {
        identityKey: parseAddress(owner).identityKey,
        ...(request.signedPrekey ? { signedPrekey: signed(request.signedPrekey) } : {}),
        ...(request.kemPrekey ? { kemPrekey: signed(request.kemPrekey) } : {}),
        ...(request.oneTimePrekeys
          ? { oneTimePrekeys: request.oneTimePrekeys.map((p) => ({ keyId: p.id, publicKey: p.record })) }
          : {}),
      };
      const result = await this.directory.publish(owner, upload);
      return { status: 'ok', oneTimePrekeys: result.remaining };
    });
  }

  @RelayRateLimit('prekeyClaim')
  @SubscribeMessage('prekeys:claim')
  claimPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysClaimResult>> {
    return this.track(async () => {
      this.addressOf(socket);
      const { address } = validateClientPayload('prekeys:claim', body);
      const claimed = await this.directory.claim(address);
      if (!claimed) throw new ProtocolError(ProtocolErrorCode.BadPrekey, M.noPrekeys());
      const { bundle, stock } = claimed;
      // Told once per claimed key while below the mark; claims on an empty stock stay silent.
      if (bundle.oneTimePrekey && stock.belowLowWater) {
        this.server
          ?.to(mailboxRoom(address))
          .emit('prekeys:low', { remaining: stock.remaining, threshold: stock.lowWaterMark });
      }
      const record = (p: { keyId: number; publicKey: Uint8Array }): PrekeyRecord => ({
        id: p.keyId,
        record: p.publicKey,
      });
      return {
        status: 'ok',
        bundle: {
          address,
          signedPrekey: record(bundle.signedPrekey),
          kemPrekey: record(bundle.kemPrekey),
          oneTimePrekey: bundle.oneTimePrekey ? record(bundle.oneTimePrekey) : null,
        },
      };
    });
  }

  @SubscribeMessage('prekeys:count')
  countPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysCountResult>> {
    return this.track(async () => {
      const owner = this.addressOf(socket);
      validateClientPayload('prekeys:count', body);
      const inventory = await this.directory.inventoryOf(owner);
      return {
        status: 'ok',
        oneTimePrekeys: inventory.remaining,
        hasSignedPrekey: inventory.published,
        hasKemPrekey: inventory.published,
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  /** The packet middleware: only known events, only handshake events before authentication, only with an ack. */
  private admit(socket: RelaySocket, packet: unknown[], next: (err?: Error) => void): void {
    const event = packet[0];
    const last = packet[packet.length - 1];
    const ack =
      packet.length > 1 && typeof last === 'function' ? (last as (reply: ErrorReply) => void) : undefined;
    const authenticated = socket.data.address !== undefined;
    if (typeof event !== 'string' || !KNOWN_EVENTS.has(event)) {
      this.refuse(
        socket,
        ack,
        new ProtocolError(ProtocolErrorCode.Malformed, M.unknownEvent(CLIENT_EVENTS)),
        !authenticated,
      );
      return;
    }
    if (!authenticated && !OPEN_EVENTS.has(event)) {
      this.refuse(
        socket,
        ack,
        new ProtocolError(ProtocolErrorCode.Unauthenticated, M.unauthenticated()),
        true,
      );
      return;
    }
    if (!ack) {
      // Nothing could carry the reply; a request the client cannot learn the fate of is not run.
      return;
    }
    next();
  }

  private refuse(
    socket: RelaySocket,
    ack: ((reply: ErrorReply) => void) | undefined,
    err: ProtocolError,
    close: boolean,
  ): void {
    ack?.(toErrorReply(err, 'refused', this.logger));
    if (close) this.closeSoon(socket);
  }

  /** Closes the socket after the reply already queued on it has been written. */
  private closeSoon(socket: RelaySocket): void {
    setImmediate(() => socket.disconnect(true));
  }

  private handshakeFailed(socket: RelaySocket): void {
    this.metrics.handshake(false);
    const state = this.sockets.get(socket.id);
    if (state) state.handshake = undefined;
    this.closeSoon(socket);
  }

  private stateOf(socket: RelaySocket): SocketState {
    let state = this.sockets.get(socket.id);
    if (!state) {
      state = {};
      this.sockets.set(socket.id, state);
    }
    return state;
  }

  /** The socket's authenticated address (the packet middleware guarantees one). */
  private addressOf(socket: RelaySocket): AddressString {
    const address = socket.data.address;
    if (!address) throw new ProtocolError(ProtocolErrorCode.Unauthenticated, M.unauthenticated());
    return address;
  }

  /**
   * Emits each recipient's new mail to its sockets in its mailbox room when it has one on this
   * node (each socket while PushFlowControl admits it). For the others, when other nodes exist,
   * one `mail:available` notice per few recipients goes through the adapter: recipient and store
   * cursors only, so the adapter sends a small NOTIFY (no attachment row holding ciphertext for
   * every other node to read back), and the node holding the socket reads the rows itself
   * (onMailAvailable). An address has one device (docs/protocol.md, Addresses), so a recipient
   * served here is normally served nowhere else; a second socket of the same identity on another
   * node (a reconnect racing the old socket's close) gets that mail from its `fetch`, as any
   * client does on connect: the mail stays stored until acked.
   */
  private push(pushes: Map<string, Push>): void {
    const server = this.server;
    if (!server) return;
    const adapter = server.of('/').adapter;
    const remote: MailNotice[] = [];
    for (const [recipient, { mail, cursors }] of pushes) {
      const sockets = this.localSockets(server, recipient as AddressString);
      if (sockets.length > 0) this.metrics.message('delivered', this.pushTo(sockets, [mail]));
      else remote.push({ recipient: recipient as AddressString, cursors });
    }
    if (remote.length === 0) return;
    // The heartbeat adapter knows the other nodes (a new node announces itself as it starts).
    void adapter.serverCount().then((nodes) => {
      if (nodes <= 1) return;
      for (const notices of noticeBatches(remote, this.options.mail.maxNoticeCursors)) {
        server.serverSideEmit('mail:available', notices);
      }
    });
  }

  /**
   * Another node stored mail for recipients it holds no socket of: push the rows of those held
   * here, read from the store. A notice is checked before use (it comes through the database);
   * when the read fails, the mail stays stored and the client gets it by `fetch`.
   */
  private async onMailAvailable(notices: unknown): Promise<void> {
    const server = this.server;
    if (!server || !Array.isArray(notices)) return;
    const here = (notices as Partial<MailNotice>[]).filter(
      (n): n is MailNotice =>
        typeof n?.recipient === 'string' &&
        Array.isArray(n.cursors) &&
        this.wantsRows(server, n.recipient as AddressString, n.cursors.length),
    );
    for (const batch of noticeBatches(here, this.options.mail.maxNoticeCursors)) {
      try {
        const rows = await this.store.read(
          batch.map((n) => n.recipient),
          batch.flatMap((n) => n.cursors),
        );
        const mail = new Map<string, MailItem[]>();
        for (const m of rows) {
          const items = mail.get(m.recipient) ?? [];
          items.push({
            envelope: m.envelope,
            sender: m.sender as AddressString,
            receivedAt: m.createdAt,
            cursor: m.cursor,
          });
          mail.set(m.recipient, items);
        }
        for (const [recipient, items] of mail) {
          const sockets = this.localSockets(server, recipient as AddressString);
          this.metrics.message('delivered', this.pushTo(sockets, mailEvents(items)));
        }
      } catch (err) {
        this.logger.warn(
          M.noticeReadFailed(err instanceof RelayError && 'sqlState' in err ? String(err.sqlState) : 'n/a'),
        );
        // The mail stays stored: its recipients here fetch it now rather than at their next sweep.
        for (const n of batch) this.syncSockets(this.localSockets(server, n.recipient), 'notices');
      }
    }
  }

  /** This node's sockets of `recipient` (an address normally has one). */
  private localSockets(server: RelayServer, recipient: AddressString): RelaySocket[] {
    const nsp = server.of('/');
    const sockets: RelaySocket[] = [];
    for (const id of nsp.adapter.rooms.get(mailboxRoom(recipient)) ?? []) {
      const socket = nsp.sockets.get(id);
      if (socket) sockets.push(socket);
    }
    return sockets;
  }

  /**
   * Emits the `mail` events to each socket PushFlowControl admits (one behind on its writes gets
   * `mail:sync` when it drained instead) and returns the messages that reached a socket.
   */
  private pushTo(sockets: readonly RelaySocket[], events: readonly MailItem[][]): number {
    let delivered = 0;
    for (const mail of events) {
      let reached = false;
      for (const socket of sockets) {
        if (!this.pushFlow.admit(socket, mail.length)) continue;
        socket.emit('mail', { mail });
        reached = true;
      }
      if (reached) delivered += mail.length;
    }
    return delivered;
  }

  /**
   * Whether a notice's rows are worth reading here: the recipient has a socket on this node that
   * is not behind. When all of them are, the messages are withheld (and counted) unread.
   */
  private wantsRows(server: RelayServer, recipient: AddressString, messages: number): boolean {
    const sockets = this.localSockets(server, recipient);
    if (sockets.some((socket) => !this.pushFlow.isBehind(socket))) return true;
    for (const socket of sockets) this.pushFlow.admit(socket, messages);
    return false;
  }

  /** Runs a handler body, remembered until it settles so shutdown can wait for it. */
  private track<T>(body: () => Promise<T>): Promise<T> {
    const run = body();
    this.inFlight.add(run);
    void run.then(
      () => this.inFlight.delete(run),
      () => this.inFlight.delete(run),
    );
    return run;
  }
}

/**
 * A gateway class of its own for one MessengerRelayModule: its @WebSocketGateway options object
 * is filled from that module's options when Nest instantiates it (before Nest creates the
 * socket.io server), so two relays in one process (tests, two nodes) never share socket options.
 */
export function createRelayGateway(): Type<RelayGateway> {
  const options: Partial<ServerOptions> = {};
  @WebSocketGateway(options)
  class MessengerRelayGateway extends RelayGateway {}
  SERVER_OPTIONS.set(MessengerRelayGateway, options);
  return MessengerRelayGateway;
}
