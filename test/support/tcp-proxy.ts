/**
 * Test support: an in-repo TCP proxy on loopback, for fault injection between a client and one or
 * more relay nodes. Real sockets, no mocks.
 *
 *  - **Forward** (the default): every accepted connection is piped to a target; with several
 *    targets it is a round-robin load balancer, and a target that refuses the connection (a killed
 *    node) is skipped for the next one.
 *  - **Black-hole** (`blackhole()`): nothing is forwarded any more, in either direction, on current
 *    and new connections, but every connection stays open (a partition that keeps the TCP state);
 *    the bytes are held and flow again on `heal()`, as TCP would retransmit them.
 *  - **Stop reading** (`stopReading()`): the proxy stops reading what the target sends on the
 *    current connections, so the target's writes back up in its kernel buffers and then in its
 *    own process (a client whose socket stopped reading); `resumeReading()` reads on.
 *  - **Reset** (`reset()`): every current connection is destroyed with a TCP RST, both sides.
 *    `refuse(true)` resets each new connection right after accepting it, until `refuse(false)`.
 *  - **Frame filter** (`filter`): with one set, both directions are parsed as the HTTP upgrade
 *    followed by WebSocket frames (RFC 6455, section 5.2; socket.io's websocket transport with
 *    per-message deflate off, its default) and a frame the filter refuses is dropped whole. This
 *    is how a test drops socket.io ack packets on the wire. Set it before the connection opens.
 *
 * `accepted` records when each connection arrived, so a test can check a client's reconnect
 * schedule against what the proxy saw.
 *
 * @example
 * const proxy = await TcpProxy.start({ targets: [relayPort] });
 * const client = await MessengerClient.open({ relayUrl: proxy.url, ... });
 * proxy.blackhole();            // the client is partitioned, its socket stays "up"
 * proxy.reset(); proxy.refuse(true);  // the partition ends in RSTs; reconnects are refused
 * proxy.refuse(false); proxy.heal();  // the network is back
 */
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/** One WebSocket frame as the filter sees it (payload unmasked; text frames also as a string). */
export interface ProxiedFrame {
  /** Who sent it: `client` (towards the target) or `server` (towards the client). */
  readonly from: 'client' | 'server';
  /** RFC 6455 opcode: 1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong. */
  readonly opcode: number;
  readonly payload: Buffer;
  /** The payload as UTF-8 for text frames. */
  readonly text: string | undefined;
  /** Which proxied connection it belongs to (1, 2, ... in accept order). */
  readonly connection: number;
}

/** Returns false to drop the frame. */
export type FrameFilter = (frame: ProxiedFrame) => boolean;

export interface TcpProxyOptions {
  /** Ports on 127.0.0.1 to forward to; several make a round-robin balancer. */
  readonly targets: readonly number[];
  /** Port to listen on (127.0.0.1). @default 0 (any free port) */
  readonly port?: number;
}

/** Splits one direction of a proxied WebSocket stream into whole frames, after the HTTP head. */
class FrameSplitter {
  #buffer: Buffer = Buffer.alloc(0);
  #headDone = false;

  /** Feeds bytes; returns the chunks to forward, each a whole HTTP head or frame, with its parse. */
  push(chunk: Buffer): { bytes: Buffer; opcode: number | undefined; payload: Buffer | undefined }[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const out: { bytes: Buffer; opcode: number | undefined; payload: Buffer | undefined }[] = [];
    if (!this.#headDone) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return out;
      out.push({ bytes: this.#buffer.subarray(0, end + 4), opcode: undefined, payload: undefined });
      this.#buffer = this.#buffer.subarray(end + 4);
      this.#headDone = true;
    }
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) break;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const maskAt = offset;
      if (masked) offset += 4;
      if (b.length < offset + length) break;
      const payload = Buffer.from(b.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= b[maskAt + (i % 4)]!;
      out.push({ bytes: b.subarray(0, offset + length), opcode, payload });
      this.#buffer = b.subarray(offset + length);
    }
    return out;
  }
}

interface Pair {
  readonly id: number;
  readonly client: Socket;
  upstream: Socket | undefined;
  /** Bytes held while black-holed (or before the upstream connected), per direction. */
  readonly held: { toServer: Buffer[]; toClient: Buffer[] };
}

export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  #targets: number[];
  #next = 0;
  #ids = 0;
  #blackholed = false;
  #refusing = false;
  /** Drops WebSocket frames it returns false for (see the file comment). Set before connections open. */
  filter: FrameFilter | undefined;
  /** When each accepted connection arrived (Date.now()), in order. */
  readonly accepted: number[] = [];
  /** Frames the filter dropped. */
  dropped = 0;

  private constructor(server: Server, targets: readonly number[]) {
    this.#server = server;
    this.#targets = [...targets];
    server.on('connection', (socket) => this.#accept(socket));
  }

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: false });
    const proxy = new TcpProxy(server, options.targets);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** `http://127.0.0.1:<port>`: give it to a client as its relay URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open proxied connections. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Replaces the targets (e.g. to add a restarted node); open connections keep theirs. */
  setTargets(targets: readonly number[]): void {
    this.#targets = [...targets];
  }

  /** Stops forwarding on every connection, current and new; the connections stay open. */
  blackhole(): void {
    this.#blackholed = true;
  }

  /** Forwards again, the held bytes first. */
  heal(): void {
    this.#blackholed = false;
    for (const pair of this.#pairs) this.#flush(pair);
  }

  /** Stops reading from the targets on every current connection (new connections read as usual). */
  stopReading(): void {
    for (const pair of this.#pairs) pair.upstream?.pause();
  }

  /** Reads from the targets again on every current connection. */
  resumeReading(): void {
    for (const pair of this.#pairs) pair.upstream?.resume();
  }

  /** Destroys every current connection, both sides, with a TCP RST; held bytes are dropped. */
  reset(): void {
    for (const pair of [...this.#pairs]) this.#destroy(pair);
  }

  /** While on, each new connection is reset as soon as it is accepted. */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.accepted.push(Date.now());
    client.setNoDelay(true);
    if (this.#refusing) {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { id: ++this.#ids, client, upstream: undefined, held: { toServer: [], toClient: [] } };
    this.#pairs.add(pair);
    const filter = this.filter;
    const toServer = filter ? new FrameSplitter() : undefined;
    const toClient = filter ? new FrameSplitter() : undefined;
    /** A BINARY_EVENT / BINARY_ACK dropped whole also drops its attachment frames, per direction. */
    const skipAttachments = { client: 0, server: 0 };
    const pass = (
      from: 'client' | 'server',
      splitter: FrameSplitter | undefined,
      chunk: Buffer,
    ): Buffer[] => {
      if (!splitter || !filter) return [chunk];
      const out: Buffer[] = [];
      for (const part of splitter.push(chunk)) {
        if (part.opcode === undefined || part.payload === undefined) {
          out.push(part.bytes);
          continue;
        }
        if (part.opcode === 2 && skipAttachments[from] > 0) {
          skipAttachments[from]--;
          this.dropped++;
          continue;
        }
        const text = part.opcode === 1 ? part.payload.toString('utf8') : undefined;
        const keep = filter({ from, opcode: part.opcode, payload: part.payload, text, connection: pair.id });
        if (keep) {
          out.push(Buffer.from(part.bytes));
          continue;
        }
        this.dropped++;
        // socket.io binary packets: "45<n>-..." / "46<n>-..." announce n attachment frames.
        const attachments = text === undefined ? undefined : /^4[56](\d+)-/.exec(text)?.[1];
        if (attachments !== undefined) skipAttachments[from] += Number(attachments);
      }
      return out;
    };
    client.on('data', (chunk: Buffer) => {
      for (const bytes of pass('client', toServer, chunk)) this.#send(pair, 'toServer', bytes);
    });
    client.on('error', () => this.#destroy(pair));
    client.on('close', () => this.#destroy(pair));
    this.#connectUpstream(pair, 0, (upstream) => {
      upstream.on('data', (chunk: Buffer) => {
        for (const bytes of pass('server', toClient, chunk)) this.#send(pair, 'toClient', bytes);
      });
    });
  }

  #connectUpstream(pair: Pair, tried: number, onReady: (upstream: Socket) => void): void {
    if (!this.#pairs.has(pair)) return;
    if (tried >= this.#targets.length) {
      this.#destroy(pair); // every target refused
      return;
    }
    const port = this.#targets[this.#next++ % this.#targets.length]!;
    const upstream = connect({ host: '127.0.0.1', port });
    upstream.setNoDelay(true);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      if (!this.#pairs.has(pair)) {
        upstream.destroy();
        return;
      }
      pair.upstream = upstream;
      onReady(upstream);
      this.#flush(pair);
    });
    upstream.on('error', () => {
      if (!connected) this.#connectUpstream(pair, tried + 1, onReady);
      else this.#destroy(pair);
    });
    upstream.on('close', () => {
      if (connected) this.#destroy(pair);
    });
  }

  #send(pair: Pair, direction: 'toServer' | 'toClient', bytes: Buffer): void {
    const to = direction === 'toServer' ? pair.upstream : pair.client;
    if (this.#blackholed || !to || pair.held[direction].length > 0) {
      pair.held[direction].push(bytes);
      if (!this.#blackholed && to) this.#flush(pair);
      return;
    }
    to.write(bytes);
  }

  #flush(pair: Pair): void {
    if (this.#blackholed) return;
    if (pair.upstream) for (const b of pair.held.toServer.splice(0)) pair.upstream.write(b);
    for (const b of pair.held.toClient.splice(0)) pair.client.write(b);
  }

  #destroy(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const socket of [pair.client, pair.upstream]) {
      if (!socket || socket.destroyed) continue;
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
    }
  }
}
