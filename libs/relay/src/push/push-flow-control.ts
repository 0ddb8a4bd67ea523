/**
 * Push flow control (docs/relay.md, "Push flow control"). A recipient that stops reading must not
 * make the relay buffer its pushes without limit: engine.io queues every packet of a socket whose
 * transport cannot write, and ws keeps every frame its TCP socket has not written, until the
 * socket.io heartbeat drops the socket (about 45 s later). Mail is stored before it is pushed and
 * `fetch` returns it until acked, so a push can be left out as long as the client is told to fetch.
 *
 * The contract:
 * - A socket's backlog is what the relay holds for it and has not handed to the kernel: the
 *   packets in engine.io's write buffer (`socket.conn.writeBuffer`; one item each, their string or
 *   binary data counted in bytes) plus, on the websocket transport, ws's `bufferedAmount` (frames
 *   handed to ws that its TCP socket has not written, those corked for this event-loop turn by
 *   cork-writes.ts included).
 * - The gateway asks `admit(socket, n)` before each `mail` push of `n` messages. It is true while
 *   the backlog is under both `mail.pushBacklogBytes` and `mail.pushBacklogItems`, so a socket
 *   holds at most a cap plus one push event. At a cap the socket is behind: that push and every
 *   later one to it is refused (`messages_total{event="withheld"}`) and its mail stays stored.
 * - A behind socket is watched until its transport emits `drain` (websocket: every frame of a
 *   send was written; polling: a response went out), on the transport it upgrades to as well. At
 *   the first `drain` (or upgrade) that finds the backlog at half of both caps or less, the socket
 *   is sent `mail:sync` `{ reason: 'backlog' }` once and pushes to it resume. The sync follows
 *   every push the socket was sent before it; the client fetches every page, so what was withheld
 *   is delivered from the store.
 * - Nothing is kept for a socket that is not behind; a behind socket's watch ends when it
 *   disconnects. A socket that never reads again is dropped by the socket.io heartbeat, as before.
 *
 * @example
 * if (pushFlow.admit(socket, mail.length)) socket.emit('mail', { mail });
 */
import { Inject, Injectable } from '@nestjs/common';
import type { MailSyncPush } from '@usm/protocol';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

/** The parts of an engine.io transport read here. */
interface EngineTransport {
  readonly name: string;
  /** The websocket transport's ws WebSocket. */
  readonly socket?: { readonly bufferedAmount?: number };
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/** The parts of an engine.io socket (a socket.io socket's `conn`) read here. */
interface EngineConnection {
  readonly writeBuffer: readonly { readonly data?: unknown }[];
  readonly transport: EngineTransport;
  on(event: 'upgrade', listener: (transport: EngineTransport) => void): unknown;
  off(event: 'upgrade', listener: (transport: EngineTransport) => void): unknown;
}

/** A socket.io socket as used here (a RelaySocket). */
export interface FlowControlledSocket {
  /** The engine.io socket. */
  readonly conn: unknown;
  emit(event: 'mail:sync', payload: MailSyncPush): unknown;
  once(event: 'disconnect', listener: () => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
}

/** What the relay holds for a socket and has not handed to the kernel. */
export interface PushBacklog {
  /** Bytes in engine.io's write buffer plus ws's `bufferedAmount`. */
  readonly bytes: number;
  /** Packets in engine.io's write buffer. */
  readonly items: number;
}

function byteLength(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

/** The backlog of `socket` (see the contract above). */
export function pushBacklog(socket: FlowControlledSocket): PushBacklog {
  const conn = socket.conn as Partial<EngineConnection> | undefined;
  const buffer = conn?.writeBuffer ?? [];
  let bytes = 0;
  for (const packet of buffer) bytes += byteLength(packet.data);
  const transport = conn?.transport;
  if (transport?.name === 'websocket') bytes += transport.socket?.bufferedAmount ?? 0;
  return { bytes, items: buffer.length };
}

/** The listeners of a behind socket, removed when it catches up or disconnects. */
interface Watch {
  transport: EngineTransport;
  readonly onDrain: () => void;
  readonly onUpgrade: (transport: EngineTransport) => void;
  readonly onDisconnect: () => void;
}

/**
 * Stops `mail` pushes to a socket whose write backlog reached its cap, and sends it `mail:sync`
 * once when the backlog has drained (the contract above).
 */
@Injectable()
export class PushFlowControl {
  private readonly behind = new WeakMap<FlowControlledSocket, Watch>();
  private readonly maxBytes: number;
  private readonly maxItems: number;

  constructor(
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'mail'>,
    private readonly metrics: RelayMetrics,
  ) {
    this.maxBytes = options.mail.pushBacklogBytes;
    this.maxItems = options.mail.pushBacklogItems;
  }

  /**
   * Whether a push of `messages` messages may be emitted to `socket` now. False when the socket is
   * behind, or its backlog is at a cap (then it is behind from here on): the push is withheld.
   */
  admit(socket: FlowControlledSocket, messages: number): boolean {
    if (!this.behind.has(socket)) {
      const { bytes, items } = pushBacklog(socket);
      if (bytes < this.maxBytes && items < this.maxItems) return true;
      this.watch(socket);
    }
    this.metrics.message('withheld', messages);
    return false;
  }

  /** Whether pushes to `socket` are withheld until it drains. */
  isBehind(socket: FlowControlledSocket): boolean {
    return this.behind.has(socket);
  }

  private watch(socket: FlowControlledSocket): void {
    const conn = socket.conn as EngineConnection;
    const watch: Watch = {
      transport: conn.transport,
      onDrain: () => this.drained(socket),
      onUpgrade: (transport) => {
        watch.transport.off('drain', watch.onDrain);
        watch.transport = transport;
        transport.on('drain', watch.onDrain);
        this.drained(socket);
      },
      onDisconnect: () => this.unwatch(socket),
    };
    this.behind.set(socket, watch);
    watch.transport.on('drain', watch.onDrain);
    conn.on('upgrade', watch.onUpgrade);
    socket.once('disconnect', watch.onDisconnect);
  }

  private unwatch(socket: FlowControlledSocket): void {
    const watch = this.behind.get(socket);
    if (!watch) return;
    this.behind.delete(socket);
    watch.transport.off('drain', watch.onDrain);
    (socket.conn as EngineConnection).off('upgrade', watch.onUpgrade);
    socket.off('disconnect', watch.onDisconnect);
  }

  /** On a drain or an upgrade: when the backlog is down to half of both caps, sync and resume. */
  private drained(socket: FlowControlledSocket): void {
    const { bytes, items } = pushBacklog(socket);
    if (bytes * 2 > this.maxBytes || items * 2 > this.maxItems) return;
    this.unwatch(socket);
    socket.emit('mail:sync', { reason: 'backlog' });
    this.metrics.mailSync('backlog');
  }
}
