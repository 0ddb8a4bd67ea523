/**
 * End-to-end helpers of the gateway tests: a relay node (a small Nest app with the module on a
 * real PostgreSQL, listening on loopback) and raw socket.io-client sockets authenticated with the
 * protocol's HandshakeClient against the pinned relay key. No mocks of socket.io or PostgreSQL.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type IdentityKeyPair, generateIdentityKeyPair, randomBytes } from '@usm/crypto';
import {
  type AddressString,
  type Clock,
  type ClientResult,
  type ClientToServerEvents,
  type ErrorReply,
  HandshakeClient,
  type Reply,
  type ServerToClientEvents,
  addressOf,
  encodeEnvelope,
  formatAddress,
  generateMessageId,
  parseAddress,
  validateReply,
  socketParser,
} from '@usm/protocol';
import { io, type Socket } from 'socket.io-client';
import {
  MessengerRelayModule,
  RelayClock,
  RelayGateway,
  RelayIoAdapter,
  type RelayModuleOptions,
} from '../src/index.js';
import { RELAY_IDENTITY } from './fixtures.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface RelayNode {
  app: INestApplication;
  /** `http://127.0.0.1:<port>` */
  url: string;
  gateway: RelayGateway;
  close(): Promise<void>;
}

/**
 * Starts one relay node on `databaseUrl`. Cleanup runs are off and rate limits are off unless the
 * test sets them; everything else is the module's defaults. Handlers are bound by RelayIoAdapter,
 * as in the sample app (the e2e tests and the drop-in app run on Nest's own IoAdapter).
 */
export async function startRelay(
  databaseUrl: string,
  options: Partial<Omit<RelayModuleOptions, 'database'>> = {},
  clock?: RelayClock,
): Promise<RelayNode> {
  let builder = Test.createTestingModule({
    imports: [
      MessengerRelayModule.forRoot({
        identity: RELAY_IDENTITY,
        database: { url: databaseUrl, poolSize: 5 },
        cleanup: { enabled: false },
        rateLimits: { enabled: false },
        ...options,
        http: false,
      }),
    ],
  });
  if (clock) builder = builder.overrideProvider(RelayClock).useValue(clock);
  const app = (await builder.compile()).createNestApplication({ logger: false });
  app.useWebSocketAdapter(new RelayIoAdapter(app));
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
  return { app, url, gateway: app.get(RelayGateway), close: () => app.close() };
}

/** A connected (not yet authenticated) socket. Rejects on connect_error. */
export function connect(
  url: string,
  options: { transports?: ('websocket' | 'polling')[]; extraHeaders?: Record<string, string> } = {},
): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, {
    transports: options.transports ?? ['websocket'],
    forceNew: true,
    reconnection: false,
    parser: socketParser, // as MessengerClient: pushes and pages carry up to 100 envelopes
    ...(options.extraHeaders ? { extraHeaders: options.extraHeaders } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Emits `event` and returns its validated reply (the client validates everything it receives). */
export async function request<E extends keyof ClientToServerEvents>(
  socket: ClientSocket,
  event: E,
  payload: Parameters<ClientToServerEvents[E]>[0],
): Promise<Reply<ClientResult<E>>> {
  const emit = socket.emitWithAck as (event: string, payload: unknown) => Promise<unknown>;
  return validateReply(event, await emit.call(socket, event, payload));
}

/** Emits anything (any name, any payload) and returns the raw reply. */
export function raw(socket: ClientSocket, event: string, ...args: unknown[]): Promise<unknown> {
  const emit = socket.emitWithAck as (event: string, ...args: unknown[]) => Promise<unknown>;
  return emit.call(socket, event, ...args);
}

/** Emits an event without an acknowledgement (which the relay does not run). */
export function fire(socket: ClientSocket, event: string, payload: unknown): void {
  (socket.emit as (event: string, payload: unknown) => unknown).call(socket, event, payload);
}

/** The successful result of a reply, or a thrown error naming the code (so a test fails with it). */
export function ok<T extends object>(reply: Reply<T>): T {
  if (reply.status !== 'ok') throw new Error(`expected ok, got ${reply.code}: ${reply.message}`);
  return reply;
}

export function failed(reply: Reply<object>): ErrorReply {
  if (reply.status !== 'error') throw new Error('expected an error reply, got ok');
  return reply;
}

export interface Client {
  socket: ClientSocket;
  identity: IdentityKeyPair;
  address: AddressString;
}

/** Runs the handshake on `socket` with `identity`, pinning the test relay key. */
export async function authenticate(
  socket: ClientSocket,
  identity: IdentityKeyPair,
  clock?: Clock,
): Promise<AddressString> {
  const hs = new HandshakeClient({
    identity,
    relayIdentity: RELAY_IDENTITY.publicKey,
    ...(clock ? { clock } : {}),
  });
  const response = ok(await request(socket, 'handshake:init', { message: hs.start() }));
  const { complete } = await hs.receiveResponse(response.message);
  return ok(await request(socket, 'handshake:complete', { message: complete })).address;
}

/** Connects and authenticates a client (a new identity unless one is given). */
export async function client(url: string, identity = generateIdentityKeyPair()): Promise<Client> {
  const socket = await connect(url);
  const address = await authenticate(socket, identity);
  expect(address).toBe(formatAddress(addressOf(identity.publicKey)));
  return { socket, identity, address };
}

/** An encoded envelope to `recipient` with random ciphertext. */
export function envelopeTo(recipient: AddressString, ciphertextBytes = 48): Uint8Array {
  return encodeEnvelope({
    id: generateMessageId(),
    recipient: parseAddress(recipient),
    ciphertext: randomBytes(ciphertextBytes),
  });
}

/** The next `event` push on `socket`. */
export function next<E extends keyof ServerToClientEvents>(
  socket: ClientSocket,
  event: E,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve) => {
    (socket.once as (e: string, fn: (payload: unknown) => void) => void).call(socket, event, (payload) =>
      resolve(payload as Parameters<ServerToClientEvents[E]>[0]),
    );
  });
}

/** Resolves with the disconnect reason (at once when already disconnected). */
export function disconnected(socket: ClientSocket): Promise<string> {
  if (socket.disconnected && !socket.active) return Promise.resolve('already disconnected');
  return new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
}

/** Closes every socket given. */
export function closeAll(...sockets: (ClientSocket | undefined)[]): void {
  for (const s of sockets) s?.close();
}
