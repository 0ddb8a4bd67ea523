/**
 * The socket.io PostgreSQL adapter's LISTEN connection at shutdown: the relay's shutdown hook
 * closes the adapter and ends that connection before the pool goes away, instead of handing it
 * back to the pool still LISTENing. With a DataSource shared by the host (whose pool outlives the
 * relay) a pooled LISTEN connection would stay subscribed for the life of the host's app.
 */
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import { usePostgres } from '../../../test/support/postgres.js';
import { MessengerRelayModule, RelayDatabase } from '../src/index.js';
import { RELAY_IDENTITY } from './fixtures.js';
import { client, closeAll, envelopeTo, next, ok, request } from './relay-client.js';

/**
 * The backend pid and LISTEN channels of every connection in `pool`: all of them are checked out
 * at once, so a query still in flight is waited for, not missed.
 */
async function pooledConnections(pool: pg.Pool): Promise<{ pid: number; channels: string[] }[]> {
  const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
  try {
    return await Promise.all(
      clients.map(async (c) => {
        const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
        const channels = await c.query<{ channel: string }>('SELECT pg_listening_channels() AS channel');
        return { pid, channels: channels.rows.map((r) => r.channel) };
      }),
    );
  } finally {
    for (const c of clients) c.release();
  }
}

describe('relay gateway: the adapter at shutdown', () => {
  const pg = usePostgres();

  it('ends its LISTEN connection on close instead of returning it to the shared pool', async () => {
    const shared: DataSource = await pg.dataSource({ poolSize: 10 });
    const moduleRef = await Test.createTestingModule({
      imports: [
        MessengerRelayModule.forRoot({
          identity: RELAY_IDENTITY,
          database: { dataSource: shared },
          cleanup: { enabled: false },
          rateLimits: { enabled: false },
          http: false,
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
    const pool = app.get(RelayDatabase).pgPool;

    // The adapter is running (a send publishes through it) and holds its LISTEN connection.
    let listenerPid: number | undefined;
    const alice = await client(url);
    const bob = await client(url);
    try {
      const pushed = next(bob.socket, 'mail');
      ok(await request(alice.socket, 'send', { envelopes: [envelopeTo(bob.address)] }));
      expect((await pushed).mail).toHaveLength(1);
      const c = await pg.client();
      const { rows } = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND query = 'LISTEN "socket.io#/"'`,
      );
      expect(rows).toHaveLength(1);
      listenerPid = rows[0]?.pid;
    } catch (err) {
      await app.close();
      throw err;
    } finally {
      closeAll(alice.socket, bob.socket);
    }

    await app.close();

    // The host's DataSource is still open (the relay never closes a shared one); the LISTEN
    // connection is not among its connections, and none of them listens.
    expect(shared.isInitialized).toBe(true);
    const after = await pooledConnections(pool);
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((c) => c.pid)).not.toContain(listenerPid);
    expect(after.flatMap((c) => c.channels)).toEqual([]);
  });
});
