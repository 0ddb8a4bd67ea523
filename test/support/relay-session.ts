/**
 * Test support: a raw socket.io-client socket authenticated to a relay that runs in another
 * process (the sample app, the drop-in fixture app), with the protocol's HandshakeClient pinned
 * to the relay key the test read from that relay's identity. Replies are validated as the client
 * library validates them. No mocks: a real socket on loopback.
 *
 * @example
 * const session = await openSession(url, relayKey);      // handshake done, pinned to relayKey
 * ok(await session.request('send', { envelopes: [envelopeTo(other)] }));
 * session.close();
 */
import { type IdentityKeyPair, IdentityPublicKey, fromHex, generateIdentityKeyPair } from '@usm/crypto';
import {
  type AddressString,
  type ClientResult,
  type ClientToServerEvents,
  HandshakeClient,
  type Reply,
  type ServerToClientEvents,
  validateReply,
} from '@usm/protocol';
import { io, type Socket } from 'socket.io-client';

export type RelaySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface RelaySession {
  readonly socket: RelaySocket;
  readonly identity: IdentityKeyPair;
  /** The address the relay bound this socket to. */
  readonly address: AddressString;
  request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<Reply<ClientResult<E>>>;
  close(): void;
}

/** The relay's public key from its hex form (as /relay.json and the banner print it). */
export function relayKeyFromHex(hex: string): IdentityPublicKey {
  return new IdentityPublicKey(fromHex(hex));
}

/** The successful result of a reply, or an error naming the code (so a test fails with it). */
export function ok<T extends object>(reply: Reply<T>): T {
  if (reply.status !== 'ok') throw new Error(`expected ok, got ${reply.code}: ${reply.message}`);
  return reply;
}

/** A connected socket (websocket transport, no reconnection). Rejects on connect_error. */
export function connectSocket(url: string): Promise<RelaySocket> {
  const socket: RelaySocket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

async function request<E extends keyof ClientToServerEvents>(
  socket: RelaySocket,
  event: E,
  payload: Parameters<ClientToServerEvents[E]>[0],
): Promise<Reply<ClientResult<E>>> {
  const emit = socket.emitWithAck as (event: string, payload: unknown) => Promise<unknown>;
  return validateReply(event, await emit.call(socket, event, payload));
}

/**
 * Connects to `url` and runs the handshake as `identity` (a new one unless given), pinning
 * `relayKey`. Rejects with the ProtocolError of a failed handshake (IDENTITY_MISMATCH when the
 * relay proves another key); the socket is closed then.
 */
export async function openSession(
  url: string,
  relayKey: IdentityPublicKey,
  identity: IdentityKeyPair = generateIdentityKeyPair(),
): Promise<RelaySession> {
  const socket = await connectSocket(url);
  try {
    const hs = new HandshakeClient({ identity, relayIdentity: relayKey });
    const response = ok(await request(socket, 'handshake:init', { message: hs.start() }));
    const { complete } = await hs.receiveResponse(response.message);
    const { address } = ok(await request(socket, 'handshake:complete', { message: complete }));
    return {
      socket,
      identity,
      address,
      request: (event, payload) => request(socket, event, payload),
      close: () => socket.close(),
    };
  } catch (err) {
    socket.close();
    throw err;
  }
}
