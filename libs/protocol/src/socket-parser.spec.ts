/**
 * socketParser against real socket.io 4.8 on loopback: a packet with as many binary parts as our
 * limits allow (50 envelopes) crosses both ways, while the stock parser closes the socket on it.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { MAX_ENVELOPES_PER_SEND, MAX_SOCKET_BINARY_ATTACHMENTS } from './limits.js';
import { socketParser } from './socket-parser.js';

const parts = () => Array.from({ length: MAX_ENVELOPES_PER_SEND }, (_, i) => new Uint8Array(8).fill(i));

async function echoServer(withParser: boolean): Promise<{ http: HttpServer; io: Server; url: string }> {
  const http = createServer();
  const server = new Server(http, withParser ? { parser: socketParser } : {});
  server.on('connection', (socket) => {
    socket.on('echo', (payload: Uint8Array[], ack: (reply: Uint8Array[]) => void) => ack(payload));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { http, io: server, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

async function connect(url: string, withParser: boolean): Promise<Socket> {
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    ...(withParser ? { parser: socketParser } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

describe('socketParser', () => {
  it(`raises the attachment bound to ${MAX_SOCKET_BINARY_ATTACHMENTS}, above every event limit`, () => {
    expect(MAX_SOCKET_BINARY_ATTACHMENTS).toBeGreaterThanOrEqual(MAX_ENVELOPES_PER_SEND);
    expect(new socketParser.Decoder()).toBeInstanceOf(socketParser.Decoder);
  });

  it('carries 50 binary parts each way when both ends use it', async () => {
    const s = await echoServer(true);
    const client = await connect(s.url, true);
    try {
      const reply = (await client.timeout(5_000).emitWithAck('echo', parts())) as Uint8Array[];
      expect(reply.map((b) => b[0])).toEqual(parts().map((b) => b[0]));
    } finally {
      client.close();
      await s.io.close();
    }
  });

  it('is needed: the stock parser closes the socket on the same packet', async () => {
    const s = await echoServer(false);
    const client = await connect(s.url, false);
    try {
      const closed = new Promise<string>((resolve) => client.once('disconnect', resolve));
      client.emit('echo', parts(), () => undefined);
      // The server's decoder throws "too many attachments" and drops the connection.
      expect(await closed).toBe('transport close');
    } finally {
      client.close();
      await s.io.close();
    }
  });
});
