// The ceiling of the relay's throughput, latency and memory figures: a bare socket.io forwarder
// (A -> server -> B), no storage, no crypto, no authentication, on the same socket.io version
// and the same server options as the relay. A socket joins the room named by its `name` query
// parameter; `send` { to, envelopes } is pushed as `mail` to room `to` and acknowledged at once,
// in the relay's reply shape. Prints "bare socket.io listening on port <port>" when ready.
//
// Run: node bench/peers/bare-socketio.mjs   (PORT, default 0 = any free port)
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const server = createServer();
const io = new Server(server, {
  serveClient: false,
  transports: ['websocket', 'polling'],
  maxHttpBufferSize: 128 * 1024,
  cors: { origin: true, credentials: false },
});

io.on('connection', (socket) => {
  const name = socket.handshake.query.name;
  if (typeof name === 'string' && name) socket.join(name);
  socket.on('send', (payload, ack) => {
    if (typeof ack !== 'function') return;
    const { to, envelopes } = payload ?? {};
    if (typeof to !== 'string' || !Array.isArray(envelopes)) {
      ack({ status: 'error', code: 'MALFORMED', message: 'send { to, envelopes }' });
      return;
    }
    const receivedAt = Date.now();
    io.to(to).emit('mail', { mail: envelopes.map((envelope) => ({ envelope, sender: 'bare', receivedAt })) });
    ack({ status: 'ok', results: envelopes.map(() => ({ status: 'stored' })) });
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`bare socket.io listening on port ${server.address().port}`);
});
const stop = () => io.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
