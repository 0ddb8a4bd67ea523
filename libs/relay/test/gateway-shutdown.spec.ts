/**
 * Graceful shutdown: a send whose store is in flight when the app closes still commits and is
 * acknowledged before the socket closes; a send that arrives once shutdown began is refused with
 * UNAVAILABLE and stores nothing. Nothing acked is lost, nothing lost is acked.
 */
import { ProtocolErrorCode, formatMessageId, peekEnvelopeRoute } from '@usm/protocol';
import { usePostgres } from '../../../test/support/postgres.js';
import { type MessageStore, MessageStore as MessageStoreToken, RELAY_MESSAGES as M } from '../src/index.js';
import {
  client,
  closeAll,
  disconnected,
  envelopeTo,
  failed,
  ok,
  request,
  startRelay,
} from './relay-client.js';

describe('relay gateway: graceful shutdown', () => {
  const pg = usePostgres();

  it('finishes the store in flight and acks it, refuses new sends with UNAVAILABLE, then closes the sockets', async () => {
    const node = await startRelay(pg.url, { socket: { adapter: 'none' } });
    const alice = await client(node.url);
    const bob = await client(node.url);
    const c = await pg.client();
    try {
      // Hold the first store call open until the app is closing (a gate around the real store).
      const store = node.app.get<MessageStore>(MessageStoreToken);
      const real = store.store.bind(store);
      let entered!: () => void;
      let release!: () => void;
      const inStore = new Promise<void>((resolve) => (entered = resolve));
      const gate = new Promise<void>((resolve) => (release = resolve));
      store.store = async (...args) => {
        entered();
        await gate;
        return real(...args);
      };

      const first = envelopeTo(bob.address);
      const pending = request(alice.socket, 'send', { envelopes: [first] });
      await inStore;
      const closed = disconnected(alice.socket);
      const closing = node.close();

      const late = failed(await request(alice.socket, 'send', { envelopes: [envelopeTo(bob.address)] }));
      expect(late).toEqual({
        status: 'error',
        code: ProtocolErrorCode.Unavailable,
        message: M.shuttingDown(),
      });

      release();
      const acked = ok(await pending);
      expect(acked.results).toEqual([{ status: 'stored', id: formatMessageId(peekEnvelopeRoute(first).id) }]);
      expect(await closed).toBe('io server disconnect');
      await closing;

      const rows = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`,
        [bob.address],
      );
      expect(rows.rows[0]!.n).toBe(1);
    } finally {
      closeAll(alice.socket, bob.socket);
      await node.close().catch(() => undefined);
    }
  });
});
