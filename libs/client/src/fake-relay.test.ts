/**
 * Test kit of the client's unit specs (the `.test.ts` name keeps it out of the build and out of
 * jest's `*.spec.ts` match): an in-memory relay on a REAL socket.io 4.8 server on loopback that
 * speaks the protocol (the real handshake, validateClientPayload on every event, a mailbox per
 * address that deletes on ack, a prekey directory that hands out each one-time prekey once).
 * The end-to-end tests in test/e2e run the real relay module on PostgreSQL instead.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type IdentityKeyPair, generateIdentityKeyPair } from '@usm/crypto';
import {
  type AddressString,
  type ClientToServerEvents,
  type Clock,
  InMemoryReplayStore,
  type InterServerEvents,
  type MailItem,
  type PrekeyRecord,
  ProtocolError,
  ProtocolErrorCode,
  RelayHandshake,
  type Reply,
  SOCKET_MAX_HTTP_BUFFER_BYTES,
  type ServerToClientEvents,
  type SocketData,
  HandshakeClockSkewError,
  addressOf,
  formatAddress,
  formatMessageId,
  mailboxRoom,
  peekEnvelopeRoute,
  validateClientPayload,
  socketParser,
} from '@usm/protocol';
import { Server, type Socket } from 'socket.io';

type RelaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

interface Stored extends MailItem {
  readonly id: string;
  /** Page order (keyset cursor), like the real relay's. */
  seq: number;
}

export class FakeRelay {
  readonly identity: IdentityKeyPair = generateIdentityKeyPair();
  readonly mailboxes = new Map<string, Stored[]>();
  readonly prekeys = new Map<
    string,
    { signed?: PrekeyRecord; kem?: PrekeyRecord; oneTime: PrekeyRecord[] }
  >();
  readonly replayStore = new InMemoryReplayStore();
  /** Every event name the relay received, in order (for assertions). */
  readonly events: string[] = [];
  /** The next this many stored envelopes are not pushed (only a fetch finds them). */
  suppressPushes = 0;
  /** When set, `send` stores but the ack is never sent (a lost ack). */
  dropSendAcks = 0;
  clock: Clock = { now: () => Date.now() };
  #io: Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> | undefined;
  port = 0;
  #seq = 0;

  /** Makes the relay page `address`'s mail in reverse order of arrival. */
  reverseMailbox(address: string): void {
    const box = this.mailboxes.get(address) ?? [];
    box.reverse().forEach((m, i) => (m.seq = i));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get publicKeyHex(): string {
    return Buffer.from(this.identity.publicKey.bytes).toString('hex');
  }

  mailCount(address?: string): number {
    if (address) return this.mailboxes.get(address)?.length ?? 0;
    let n = 0;
    for (const box of this.mailboxes.values()) n += box.length;
    return n;
  }

  /** Pushes mail again to `address` (what a relay does after a lost ack), sender stamp replaceable. */
  pushAgain(address: string, item: MailItem): void {
    this.#io?.to(mailboxRoom(address as AddressString)).emit('mail', { mail: [item] });
  }

  /** Tells `address`'s sockets that stored mail was not pushed (what a relay does after withholding pushes). */
  syncPush(address: string): void {
    this.#io?.to(mailboxRoom(address as AddressString)).emit('mail:sync', { reason: 'backlog' });
  }

  async start(): Promise<void> {
    const http = createServer();
    const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(http, {
      maxHttpBufferSize: SOCKET_MAX_HTTP_BUFFER_BYTES,
      parser: socketParser,
    });
    io.on('connection', (socket) => this.#serve(socket));
    await new Promise<void>((resolve) => http.listen(this.port, '127.0.0.1', resolve));
    this.port = (http.address() as AddressInfo).port;
    this.#io = io;
  }

  async stop(): Promise<void> {
    const io = this.#io;
    this.#io = undefined;
    if (!io) return;
    io.disconnectSockets(true);
    await new Promise<void>((resolve) => void io.close(() => resolve()));
  }

  #serve(socket: RelaySocket): void {
    const hs = new RelayHandshake({
      identity: this.identity,
      replayStore: this.replayStore,
      clock: this.clock,
    });
    const on = <T extends object>(
      event: keyof ClientToServerEvents,
      handler: (payload: never) => Promise<T> | T,
    ) => {
      (socket.on as (e: string, l: (p: unknown, ack: (r: Reply<T>) => void) => void) => void)(
        event,
        async (payload, ack) => {
          this.events.push(event);
          try {
            if (event !== 'handshake:init' && event !== 'handshake:complete' && !socket.data.address) {
              throw new ProtocolError(ProtocolErrorCode.Unauthenticated, 'handshake first');
            }
            const request = validateClientPayload(event, payload);
            const result = await handler(request as never);
            if (event === 'send' && this.dropSendAcks > 0) {
              this.dropSendAcks--;
              return;
            }
            ack({ status: 'ok', ...result });
          } catch (err) {
            if (err instanceof HandshakeClockSkewError) {
              ack({ status: 'error', code: err.code, message: err.message });
            } else if (ProtocolError.is(err)) {
              ack({ status: 'error', code: err.code, message: err.message });
            } else {
              ack({ status: 'error', code: ProtocolErrorCode.Internal, message: 'internal error' });
            }
          }
        },
      );
    };
    on('handshake:init', async (p: { message: Uint8Array }) => ({
      message: await hs.receiveInit(p.message),
    }));
    on('handshake:complete', async (p: { message: Uint8Array }) => {
      const result = await hs.receiveComplete(p.message);
      const address = formatAddress(addressOf(result.peerIdentity));
      socket.data.address = address;
      await socket.join(mailboxRoom(address));
      return { address };
    });
    on('send', (p: { envelopes: Uint8Array[] }) => {
      const sender = socket.data.address!;
      const results = p.envelopes.map((bytes) => {
        const { id, recipient } = peekEnvelopeRoute(bytes);
        const to = formatAddress(recipient);
        const idString = formatMessageId(id);
        const box = this.mailboxes.get(to) ?? [];
        this.mailboxes.set(to, box);
        if (box.some((m) => m.id === idString && m.sender === sender)) {
          return { status: 'duplicate' as const, id: idString };
        }
        const seq = this.#seq++;
        const cursor = String(seq);
        const item = {
          id: idString,
          envelope: new Uint8Array(bytes),
          sender,
          receivedAt: this.clock.now(),
          seq,
          cursor,
        };
        box.push(item);
        if (this.suppressPushes > 0) {
          this.suppressPushes--; // stored, never pushed: a notice lost with a relay node
          return { status: 'stored' as const, id: idString };
        }
        this.#io?.to(mailboxRoom(to)).emit('mail', {
          mail: [{ envelope: item.envelope, sender: item.sender, receivedAt: item.receivedAt, cursor }],
        });
        return { status: 'stored' as const, id: idString };
      });
      return { results };
    });
    on('ack', (p: { ids: string[] }) => {
      const box = this.mailboxes.get(socket.data.address!) ?? [];
      const before = box.length;
      this.mailboxes.set(
        socket.data.address!,
        box.filter((m) => !p.ids.includes(m.id)),
      );
      return { deleted: before - (this.mailboxes.get(socket.data.address!)?.length ?? 0) };
    });
    on('fetch', (p: { cursor?: string; limit?: number }) => {
      const box = this.mailboxes.get(socket.data.address!) ?? [];
      const after = p.cursor ? Number(p.cursor) : -1;
      const limit = p.limit ?? 50;
      const rest = box.filter((m) => m.seq > after).sort((x, y) => x.seq - y.seq);
      const page = rest.slice(0, limit);
      return {
        mail: page.map((m) => ({
          envelope: m.envelope,
          sender: m.sender,
          receivedAt: m.receivedAt,
          cursor: m.cursor,
        })),
        cursor: rest.length > limit ? String(page.at(-1)!.seq) : null,
      };
    });
    on(
      'prekeys:publish',
      (p: { signedPrekey?: PrekeyRecord; kemPrekey?: PrekeyRecord; oneTimePrekeys?: PrekeyRecord[] }) => {
        const entry = this.prekeys.get(socket.data.address!) ?? { oneTime: [] };
        if (p.signedPrekey) entry.signed = p.signedPrekey;
        if (p.kemPrekey) entry.kem = p.kemPrekey;
        entry.oneTime.push(...(p.oneTimePrekeys ?? []));
        this.prekeys.set(socket.data.address!, entry);
        return { oneTimePrekeys: entry.oneTime.length };
      },
    );
    on('prekeys:claim', (p: { address: AddressString }) => {
      const entry = this.prekeys.get(p.address);
      if (!entry?.signed || !entry.kem) {
        throw new ProtocolError(
          ProtocolErrorCode.BadPrekey,
          'prekeys:claim: this address has published no prekeys',
        );
      }
      const oneTimePrekey = entry.oneTime.shift() ?? null;
      return {
        bundle: { address: p.address, signedPrekey: entry.signed, kemPrekey: entry.kem, oneTimePrekey },
      };
    });
    on('prekeys:count', () => {
      const entry = this.prekeys.get(socket.data.address!);
      return {
        oneTimePrekeys: entry?.oneTime.length ?? 0,
        hasSignedPrekey: entry?.signed !== undefined,
        hasKemPrekey: entry?.kem !== undefined,
      };
    });
  }
}
