/**
 * The relay's socket.io gateway (docs/protocol.md, "Socket events"): the one class Nest binds the
 * events to. Each handler checks who is asking and what was sent, then hands over to its feature:
 * handshake/, mail/, prekeys/. The handshake binds a socket to one identity's address; then that
 * socket may send envelopes to anyone, and fetch, ack and publish prekeys for its own address only.
 *
 * Who may do what, and where it is enforced:
 * - At connect (engine.io `allowRequest`, before any socket exists): a browser Origin outside
 *   `socket.allowedOrigins` is refused with HTTP 403 (socket/relay-server.ts). Nest guards do not
 *   run on connect.
 * - Every packet, before any handler: only known events, only the handshake's before
 *   authentication, only with an acknowledgement (socket/packet-admission.ts).
 * - An unauthenticated socket is closed `handshake.timeoutMs` after it connected; a failed
 *   handshake closes it at once, after the error reply (handshake/handshake.service.ts).
 * - Handlers take the address from `socket.data.address` (set only by `handshake:complete`), never
 *   from the payload.
 * - Rate limits: RelayRateLimitGuard per handler (`send` costs one point per envelope).
 * - Errors: RelayExceptionFilter, one reply shape.
 *
 * On shutdown the gateway refuses new sends (UNAVAILABLE), waits for the handlers in flight, closes
 * its sockets, then the socket.io adapter and its LISTEN connection (cluster/cluster.service.ts).
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
import { ready } from '@usm/crypto';
import {
  type AckResult,
  type FetchResult,
  type HandshakeCompleteResult,
  type HandshakeInitResult,
  type PrekeysClaimResult,
  type PrekeysCountResult,
  type PrekeysPublishResult,
  type Reply,
  type SendResult,
  validateClientPayload,
} from '@usm/protocol';
import type { ServerOptions } from 'socket.io';
import { RelayClusterService } from './cluster/cluster.service.js';
import { RelayHandshakeService } from './handshake/handshake.service.js';
import { RelayMailService } from './mail/mail.service.js';
import { RelayMetrics } from './metrics/metrics.service.js';
import { RelayPrekeysService } from './prekeys/prekeys.service.js';
import { RelayRateLimit, RelayRateLimitGuard } from './rate-limit/rate-limit.guard.js';
import { RelayExceptionFilter } from './relay-exception.filter.js';
import { RELAY_OPTIONS } from './relay.constants.js';
import type { ResolvedRelayOptions } from './relay.options.js';
import { corkSocketWrites } from './socket/cork-writes.js';
import { admitPackets } from './socket/packet-admission.js';
import {
  type RelayServer,
  type RelaySocket,
  RelaySockets,
  authenticatedAddress,
  relayServerOptions,
} from './socket/relay-server.js';
import { RelayRequests } from './socket/relay-requests.service.js';

export type { RelayServer, RelaySocket };

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

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: Pick<ResolvedRelayOptions, 'socket'>,
    private readonly sockets: RelaySockets,
    private readonly requests: RelayRequests,
    private readonly handshake: RelayHandshakeService,
    private readonly mail: RelayMailService,
    private readonly prekeys: RelayPrekeysService,
    private readonly cluster: RelayClusterService,
    private readonly metrics: RelayMetrics,
  ) {
    // Nest reads the @WebSocketGateway options object when it creates the server, after this
    // constructor: fill in the generated subclass's (empty) options from the module's options.
    const target = SERVER_OPTIONS.get(new.target);
    if (target) Object.assign(target, this.serverOptions());
  }

  /** The socket.io server (after Nest created it): `io.local.fetchSockets()` and the like. */
  get io(): RelayServer | undefined {
    return this.sockets.io;
  }

  /** socket.io server options from the module options. */
  serverOptions(): Partial<ServerOptions> {
    return relayServerOptions(this.options.socket);
  }

  async onModuleInit(): Promise<void> {
    await ready();
  }

  afterInit(server: RelayServer): void {
    this.sockets.attach(server);
    this.cluster.attach(server);
  }

  handleConnection(socket: RelaySocket): void {
    this.metrics.connectionOpened();
    // One write per socket per event-loop turn, also after an upgrade from polling.
    corkSocketWrites(socket);
    admitPackets(socket, this.logger);
    this.handshake.start(socket);
    if (this.requests.closing) socket.disconnect(true);
  }

  handleDisconnect(socket: RelaySocket): void {
    this.metrics.connectionClosed();
    this.handshake.forget(socket);
  }

  /** The first shutdown hook: from here on, sends are refused with UNAVAILABLE (nothing stored). */
  onModuleDestroy(): void {
    this.requests.close();
  }

  /**
   * Lets the handlers in flight finish (stores commit, acks go out), closes this node's sockets,
   * then the adapter and its LISTEN connection (before the relay's pool ends).
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.requests.drain();
    this.handshake.stopTimers();
    this.sockets.io?.local.disconnectSockets(true);
    await this.cluster.close();
  }

  @RelayRateLimit('handshake')
  @SubscribeMessage('handshake:init')
  handshakeInit(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<HandshakeInitResult>> {
    return this.requests.track(() => this.handshake.init(socket, body));
  }

  @SubscribeMessage('handshake:complete')
  handshakeComplete(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<HandshakeCompleteResult>> {
    return this.requests.track(() => this.handshake.complete(socket, body));
  }

  @RelayRateLimit('send')
  @SubscribeMessage('send')
  send(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<SendResult>> {
    return this.requests.track(async () =>
      this.mail.send(authenticatedAddress(socket), validateClientPayload('send', body)),
    );
  }

  @SubscribeMessage('ack')
  ack(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<AckResult>> {
    return this.requests.track(async () =>
      this.mail.ack(authenticatedAddress(socket), validateClientPayload('ack', body)),
    );
  }

  @RelayRateLimit('fetch')
  @SubscribeMessage('fetch')
  fetch(@ConnectedSocket() socket: RelaySocket, @MessageBody() body: unknown): Promise<Reply<FetchResult>> {
    return this.requests.track(async () =>
      this.mail.fetch(authenticatedAddress(socket), validateClientPayload('fetch', body)),
    );
  }

  @RelayRateLimit('prekeyUpload')
  @SubscribeMessage('prekeys:publish')
  publishPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysPublishResult>> {
    return this.requests.track(async () =>
      this.prekeys.publish(authenticatedAddress(socket), validateClientPayload('prekeys:publish', body)),
    );
  }

  @RelayRateLimit('prekeyClaim')
  @SubscribeMessage('prekeys:claim')
  claimPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysClaimResult>> {
    return this.requests.track(async () => {
      authenticatedAddress(socket);
      return this.prekeys.claim(validateClientPayload('prekeys:claim', body));
    });
  }

  @SubscribeMessage('prekeys:count')
  countPrekeys(
    @ConnectedSocket() socket: RelaySocket,
    @MessageBody() body: unknown,
  ): Promise<Reply<PrekeysCountResult>> {
    return this.requests.track(async () => {
      const owner = authenticatedAddress(socket);
      validateClientPayload('prekeys:count', body);
      return this.prekeys.count(owner);
    });
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
