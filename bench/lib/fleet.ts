/**
 * The bench's clients: raw socket.io-client sockets, authenticated against a relay with the
 * protocol's HandshakeClient (pinning the run's relay key), or plain sockets of the bare
 * socket.io forwarder (bench/peers/bare-socketio.mjs). A Fleet is N sender -> recipient pairs
 * that send the same encoded envelopes either way, so the relay and its ceiling do the same
 * client-side work: encode, emit with an acknowledgement, receive, peek the envelope's id.
 *
 * On the relay the recipient acks what it received (coalesced per event-loop turn, as a client
 * acks after persisting), so the relay deletes each row: the full durable path per message.
 */
import { type IdentityKeyPair, IdentityPublicKey, generateIdentityKeyPair, randomBytes } from '@usm/crypto';
import {
  type AddressString,
  type ClientToServerEvents,
  HandshakeClient,
  type ServerToClientEvents,
  addressOf,
  encodeEnvelope,
  formatAddress,
  formatMessageId,
  generateMessageId,
  parseAddress,
  peekEnvelopeRoute,
} from '@usm/protocol';
import { io, type Socket } from 'socket.io-client';
import { now } from './measure.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Ciphertext bytes per message: 1 KiB, the size of the bare socket.io anchor's messages (docs/benchmarks.md). */
export const CIPHERTEXT_BYTES = 1024;

/** A connected socket (websocket transport, no reconnection). */
export function connectSocket(url: string, query?: Record<string, string>): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 60_000,
    ...(query ? { query } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

type Emit = (event: string, payload: unknown) => Promise<unknown>;

function okReply(event: string, reply: unknown): Record<string, unknown> {
  const r = reply as { status?: unknown; code?: unknown; message?: unknown };
  if (r?.status !== 'ok') throw new Error(`bench: ${event} failed: ${String(r?.code)} ${String(r?.message)}`);
  return r as Record<string, unknown>;
}

/** Runs the client <-> relay handshake on `socket`; returns the address the socket now holds. */
export async function authenticate(
  socket: ClientSocket,
  identity: IdentityKeyPair,
  relayKey: IdentityPublicKey,
): Promise<AddressString> {
  const emit = socket.emitWithAck as unknown as Emit;
  const hs = new HandshakeClient({ identity, relayIdentity: relayKey });
  const response = okReply(
    'handshake:init',
    await emit.call(socket, 'handshake:init', { message: hs.start() }),
  );
  const { complete } = await hs.receiveResponse(response.message as Uint8Array);
  const done = okReply(
    'handshake:complete',
    await emit.call(socket, 'handshake:complete', { message: complete }),
  );
  return done.address as AddressString;
}

/** Connects and authenticates a new identity. */
export async function relayClient(
  url: string,
  relayKey: IdentityPublicKey,
): Promise<{ socket: ClientSocket; address: AddressString }> {
  const identity = generateIdentityKeyPair();
  const socket = await connectSocket(url);
  return { socket, address: await authenticate(socket, identity, relayKey) };
}

/** Connects a socket of the bare forwarder; it joins room `name`. */
export function bareClient(url: string, name: string): Promise<ClientSocket> {
  return connectSocket(url, { name });
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** N sender -> recipient pairs, relay or bare. */
export interface Fleet {
  readonly pairs: number;
  /** Emits one message on `pair` (open loop: nothing waits for it). */
  send(pair: number): void;
  /** Called when a recipient got a message: its pair and the ms since its `send`. */
  onDelivered: ((pair: number, latencyMs: number) => void) | undefined;
  /** Sends whose reply was not ok (relay: not `stored`). */
  readonly failures: number;
  /** Messages sent and not yet received. */
  readonly inFlight: number;
  /** Forgets the messages still in flight (between measurement runs). */
  forget(): void;
  close(): void;
}

export type Kind = 'relay' | 'bare';

interface Sent {
  readonly t0: number;
  readonly pair: number;
}

class SocketFleet implements Fleet {
  onDelivered: ((pair: number, latencyMs: number) => void) | undefined;
  failures = 0;
  readonly #pending = new Map<string, Sent>();
  readonly #ciphertext = randomBytes(CIPHERTEXT_BYTES);
  readonly #onReply = (reply: unknown) => {
    const r = reply as { status?: string; results?: { status?: string }[] };
    if (r?.status !== 'ok' || r.results?.[0]?.status !== 'stored') this.failures++;
  };

  constructor(
    private readonly kind: Kind,
    private readonly senders: readonly ClientSocket[],
    private readonly recipients: readonly { socket: ClientSocket; address: AddressString }[],
  ) {
    recipients.forEach(({ socket }) => this.#listen(socket));
  }

  get pairs(): number {
    return this.senders.length;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  send(pair: number): void {
    const id = generateMessageId();
    const to = this.recipients[pair]!.address;
    const envelope = encodeEnvelope({ id, recipient: parseAddress(to), ciphertext: this.#ciphertext });
    this.#pending.set(Buffer.from(id).toString('hex'), { t0: now(), pair });
    const socket = this.senders[pair]!;
    if (this.kind === 'relay') socket.emit('send', { envelopes: [envelope] }, this.#onReply);
    else
      (socket.emit as (e: string, p: unknown, ack: (r: unknown) => void) => void)(
        'send',
        { to, envelopes: [envelope] },
        this.#onReply,
      );
  }

  forget(): void {
    this.#pending.clear();
  }

  close(): void {
    for (const s of this.senders) s.close();
    for (const r of this.recipients) r.socket.close();
  }

  #listen(socket: ClientSocket): void {
    let acks: string[] = [];
    const flush = () => {
      const ids = acks;
      acks = [];
      // Acks in chunks of 100 ids (the relay takes up to MAX_ACKS_PER_CALL per ack).
      for (let i = 0; i < ids.length; i += 100)
        socket.emit('ack', { ids: ids.slice(i, i + 100) as never }, () => undefined);
    };
    socket.on('mail', ({ mail }) => {
      const t = now();
      for (const item of mail) {
        const { id } = peekEnvelopeRoute(item.envelope);
        const key = Buffer.from(id).toString('hex');
        const sent = this.#pending.get(key);
        if (this.kind === 'relay') {
          if (acks.length === 0) setImmediate(flush);
          acks.push(formatMessageId(id));
        }
        if (!sent) continue;
        this.#pending.delete(key);
        this.onDelivered?.(sent.pair, t - sent.t0);
      }
    });
  }
}

/**
 * `pairs` authenticated sender -> recipient pairs on the relay. With several node URLs, pair i's
 * sender connects to node i mod n and its recipient to node floor(i / n) mod n, so with two nodes
 * half the pairs cross nodes (through the PostgreSQL adapter), as behind a load balancer.
 */
export async function relayFleet(
  urls: readonly string[],
  relayKey: IdentityPublicKey,
  pairs: number,
): Promise<Fleet> {
  const n = urls.length;
  const ids = Array.from({ length: pairs }, (_, i) => i);
  const senders = await inParallel(ids, 16, async (i) => (await relayClient(urls[i % n]!, relayKey)).socket);
  const recipients = await inParallel(ids, 16, (i) => relayClient(urls[Math.floor(i / n) % n]!, relayKey));
  return new SocketFleet('relay', senders, recipients);
}

/** `pairs` sender -> recipient pairs on the bare forwarder (each recipient joins a room named by an address). */
export async function bareFleet(url: string, pairs: number): Promise<Fleet> {
  const ids = Array.from({ length: pairs }, (_, i) => i);
  const senders = await inParallel(ids, 16, (i) => bareClient(url, `sender-${i}`));
  const recipients = await inParallel(ids, 16, async () => {
    const address = formatAddress(addressOf(generateIdentityKeyPair().publicKey));
    return { socket: await bareClient(url, address), address };
  });
  return new SocketFleet('bare', senders, recipients);
}

export { IdentityPublicKey };
