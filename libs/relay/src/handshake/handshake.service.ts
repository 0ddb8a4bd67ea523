/**
 * The client <-> relay handshake on a socket (docs/protocol.md, "Client <-> relay handshake"):
 * `handshake:init` runs `RelayHandshake.receiveInit`, `handshake:complete` runs `receiveComplete`,
 * then binds `socket.data.address` to the peer's address and joins its mailbox room. Any failure
 * answers with its code and closes the socket; a socket not authenticated `handshake.timeoutMs`
 * after it connected is closed. What a socket's handshake needs is kept here until it is
 * authenticated, never after (an idle authenticated socket's memory is measured).
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  type HandshakeCompleteResult,
  type HandshakeInitResult,
  ProtocolError,
  ProtocolErrorCode,
  RelayHandshake,
  type Reply,
  addressOf,
  formatAddress,
  mailboxRoom,
  validateClientPayload,
} from '@usm/protocol';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { InjectRelayClock, type RelayClock } from '../relay-clock.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { closeSoon } from '../socket/packet-admission.js';
import type { RelaySocket } from '../socket/relay-server.js';
import { type HandshakeReplayStore, InjectHandshakeReplayStore } from './replay-store.service.js';

/** A socket's handshake until it is authenticated, in this process (not `socket.data`). */
interface PendingHandshake {
  handshake?: RelayHandshake;
  timer?: ReturnType<typeof setTimeout>;
}

@Injectable()
export class RelayHandshakeService {
  private readonly pending = new Map<string, PendingHandshake>();

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: Pick<ResolvedRelayOptions, 'identity' | 'handshake'>,
    @InjectRelayClock() private readonly clock: RelayClock,
    @InjectHandshakeReplayStore() private readonly replayStore: HandshakeReplayStore,
    private readonly metrics: RelayMetrics,
  ) {}

  /** A new socket: closed `handshake.timeoutMs` from now unless it authenticated by then. */
  start(socket: RelaySocket): void {
    const timer = setTimeout(() => {
      if (!socket.data.address) socket.disconnect(true);
    }, this.options.handshake.timeoutMs);
    timer.unref?.();
    this.pending.set(socket.id, { timer });
  }

  /** The socket disconnected. */
  forget(socket: RelaySocket): void {
    const pending = this.pending.get(socket.id);
    if (pending?.timer) clearTimeout(pending.timer);
    this.pending.delete(socket.id);
  }

  /** Shutdown: the gateway closes every socket itself. */
  stopTimers(): void {
    for (const pending of this.pending.values()) if (pending.timer) clearTimeout(pending.timer);
  }

  /** `handshake:init`: the relay's Response to the client's Init (one Init per connection). */
  async init(socket: RelaySocket, body: unknown): Promise<Reply<HandshakeInitResult>> {
    if (socket.data.address)
      throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.alreadyAuthenticated());
    try {
      const { message } = validateClientPayload('handshake:init', body);
      const pending = this.pendingOf(socket);
      if (pending.handshake) throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.secondInit());
      const { skewWindowMs, replayRetentionMs } = this.options.handshake;
      pending.handshake = new RelayHandshake({
        identity: this.options.identity,
        replayStore: this.replayStore,
        clock: this.clock,
        skewWindowMs,
        replayRetentionMs,
      });
      return { status: 'ok', message: await pending.handshake.receiveInit(message) };
    } catch (err) {
      this.failed(socket);
      throw err;
    }
  }

  /** `handshake:complete`: checks the client's Complete, then binds the socket to its address. */
  async complete(socket: RelaySocket, body: unknown): Promise<Reply<HandshakeCompleteResult>> {
    if (socket.data.address)
      throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.alreadyAuthenticated());
    try {
      const { message } = validateClientPayload('handshake:complete', body);
      const pending = this.pendingOf(socket);
      if (!pending.handshake)
        throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, M.completeBeforeInit());
      const result = await pending.handshake.receiveComplete(message);
      // The relay does not encrypt frames (the socket runs over TLS): the traffic keys are not kept.
      result.trafficKeys.wipe();
      pending.handshake = undefined;
      // One device per identity until device linking exists (docs/protocol.md, Addresses).
      const address = formatAddress(addressOf(result.peerIdentity));
      if (!socket.connected) return { status: 'ok', address };
      this.forget(socket);
      socket.data.address = address;
      socket.data.authenticatedAt = this.clock.now();
      await socket.join(mailboxRoom(address));
      this.metrics.handshake(true);
      return { status: 'ok', address };
    } catch (err) {
      this.failed(socket);
      throw err;
    }
  }

  private failed(socket: RelaySocket): void {
    this.metrics.handshake(false);
    const pending = this.pending.get(socket.id);
    if (pending) pending.handshake = undefined;
    closeSoon(socket);
  }

  private pendingOf(socket: RelaySocket): PendingHandshake {
    let pending = this.pending.get(socket.id);
    if (!pending) {
      pending = {};
      this.pending.set(socket.id, pending);
    }
    return pending;
  }
}
