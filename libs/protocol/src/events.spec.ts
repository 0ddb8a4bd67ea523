/**
 * The event map against real socket.io 4.8 (server and client, loopback): the types compile for
 * both sides, binary payloads arrive as bytes the validators accept, and acks carry replies the
 * client's validators accept. No mock: a real server on an ephemeral port.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { formatAddress } from './address/address.js';
import { encodeEnvelope, peekEnvelopeRoute } from './envelope/envelope.codec.js';
import { formatMessageId } from './envelope/message-id.js';
import {
  CLIENT_EVENTS,
  mailboxRoom,
  type ClientToServerEvents,
  type InterServerEvents,
  type Reply,
  type SendResult,
  type ServerToClientEvents,
  type SocketData,
} from './events.js';
import { SOCKET_MAX_HTTP_BUFFER_BYTES } from './limits.js';
import { validateClientPayload } from './validation/client-payloads.validation.js';
import { validateReply, validateServerPush } from './validation/server-payloads.validation.js';

type RelaySocket = ServerSocket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

const sender = formatAddress({ identityKey: new Uint8Array(32).fill(9), deviceId: 1 });
const envelope = encodeEnvelope({
  id: new Uint8Array(16).fill(1),
  recipient: { identityKey: new Uint8Array(32).fill(2), deviceId: 1 },
  ciphertext: new Uint8Array(40).fill(0xcc),
});

let server: Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
let client: ClientSocket<ServerToClientEvents, ClientToServerEvents>;

/** What a gateway does with any error: the one reply shape. */
function errorReply(err: unknown): Reply<never> {
  if (ProtocolError.is(err)) return { status: 'error', code: err.code, message: err.message };
  return { status: 'error', code: ProtocolErrorCode.Internal, message: 'internal error' };
}

beforeAll(async () => {
  const http = createServer();
  server = new Server(http, { maxHttpBufferSize: SOCKET_MAX_HTTP_BUFFER_BYTES });
  server.on('connection', (socket: RelaySocket) => {
    socket.data.address = sender;
    socket.on('send', (payload, ack) => {
      try {
        const request = validateClientPayload('send', payload);
        const results = request.envelopes.map((bytes) => {
          const { id } = peekEnvelopeRoute(bytes);
          socket.emit('mail', {
            mail: [
              { envelope: bytes, sender: socket.data.address!, receivedAt: 1_700_000_000_000, cursor: '1' },
            ],
          });
          return { status: 'stored' as const, id: formatMessageId(id) };
        });
        ack({ status: 'ok', results });
      } catch (err) {
        ack(errorReply(err));
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  client = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
  await new Promise<void>((resolve) => client.on('connect', resolve));
});

afterAll(async () => {
  client.disconnect();
  await server.close();
});

describe('socket events over real socket.io', () => {
  it('carries an envelope to the relay, a typed ack back, and a mail push with the stamped sender', async () => {
    const pushed = new Promise<unknown>((resolve) => client.once('mail', resolve));
    const raw: unknown = await client.emitWithAck('send', { envelopes: [envelope] });
    const reply = validateReply('send', raw);
    expect(reply).toEqual<Reply<SendResult>>({
      status: 'ok',
      results: [{ status: 'stored', id: formatMessageId(new Uint8Array(16).fill(1)) }],
    });
    const push = validateServerPush('mail', await pushed);
    expect(push.mail[0]!.sender).toBe(sender);
    expect(new Uint8Array(push.mail[0]!.envelope)).toEqual(envelope);
  });

  it('answers an invalid payload with the uniform error reply naming the field', async () => {
    const raw: unknown = await client.emitWithAck('send', {
      envelopes: ['not bytes' as unknown as Uint8Array],
    });
    expect(validateReply('send', raw)).toEqual({
      status: 'error',
      code: 'MALFORMED',
      message: 'send.envelopes[0]: expected bytes (Uint8Array), got a string',
    });
  });

  it('names every client event and a mailbox room per address', () => {
    expect([...CLIENT_EVENTS].sort()).toEqual([
      'ack',
      'fetch',
      'handshake:complete',
      'handshake:init',
      'prekeys:claim',
      'prekeys:count',
      'prekeys:publish',
      'send',
    ]);
    expect(mailboxRoom(sender)).toBe(`mailbox:${sender}`);
  });
});
