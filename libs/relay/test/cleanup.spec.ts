import type { DataSource } from 'typeorm';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import { RelayCleanupService } from '../src/cleanup/cleanup.service.js';
import { PostgresMessageStore } from '../src/mail/message-store.service.js';
import { RelayMetrics } from '../src/metrics/metrics.service.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import { PostgresReplayStore } from '../src/handshake/replay-store.service.js';
import { address, kit, ManualClock, messageId, type Kit } from './fixtures.js';

const DAY = 24 * 60 * 60 * 1000;

describe('RelayCleanupService', () => {
  const pg = usePostgres();
  let ds: DataSource;
  let k: Kit;

  beforeAll(async () => {
    ds = await pg.dataSource();
    await runMigrations(ds);
    k = kit(ds, pg.url, { cleanup: { batchSize: 1_000 } });
  });

  it('deletes expired mail and replay nonces only, once the injected clock passes their expiry', async () => {
    const store = new PostgresMessageStore(k.db, k.options, k.clock, k.metrics);
    const replay = new PostgresReplayStore(k.db, k.clock);
    const cleanup = new RelayCleanupService(k.db, k.options, k.clock, k.metrics);
    const bob = address('bob');
    const env = (text: string, ttlMs?: number) => ({
      recipient: bob,
      messageId: messageId(),
      envelope: new TextEncoder().encode(text),
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
    await store.store(address('alice'), [env('hour', 60 * 60 * 1000), env('day', DAY), env('default')]);
    await replay.remember(new Uint8Array(32).fill(1), k.clock.now() + 5 * 60 * 1000);

    expect(await cleanup.runOnce()).toMatchObject({ mail: 0, replayNonces: 0 });
    k.clock.advance(2 * 60 * 60 * 1000); // two hours: the hour-long message and the nonce expire
    expect(await cleanup.runOnce()).toMatchObject({ mail: 1, replayNonces: 1 });
    expect(await store.pendingCount(bob)).toBe(2);
    k.clock.advance(DAY);
    expect(await cleanup.runOnce()).toMatchObject({ mail: 1, replayNonces: 0 });
    k.clock.advance(30 * DAY);
    expect(await cleanup.runOnce()).toMatchObject({ mail: 1 });

    const c = await pg.client();
    expect((await c.query(`SELECT 1 FROM usm_mail WHERE recipient = $1`, [bob])).rowCount).toBe(0);
    const text = await k.metrics.metrics();
    expect(text).toMatch(/usm_relay_messages_total\{event="expired"\} 3/);
    expect(text).toMatch(/usm_relay_queue_depth 0/);
  });

  it('two nodes cleaning at once delete every expired row exactly once, in bounded batches, and keep live rows', async () => {
    const c = await pg.client();
    const now = new ManualClock(Date.UTC(2027, 0, 1));
    const expired = 12_345;
    await c.query(
      `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
       SELECT 'r' || (i % 97), decode(lpad(to_hex(i), 32, '0'), 'hex'), 's', '\\x00'::bytea,
              $1::timestamptz - interval '31 days', $1::timestamptz - interval '1 second'
         FROM generate_series(1, $2::int) AS i`,
      [new Date(now.now()), expired],
    );
    await c.query(
      `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
       SELECT 'live', decode(lpad(to_hex(i), 32, '0'), 'hex'), 's', '\\x00'::bytea, $1, $1::timestamptz + interval '1 day'
         FROM generate_series(1, 50) AS i`,
      [new Date(now.now())],
    );
    await c.query(
      `INSERT INTO usm_rate_limits (key, points, expire)
       SELECT 'k' || i, 1, $1::bigint - 1000 FROM generate_series(1, 30) AS i`,
      [now.now()],
    );

    // A second DataSource is a second node.
    const ds2 = await pg.dataSource();
    const nodeA = new RelayCleanupService(k.db, k.options, now, new RelayMetrics(k.options));
    const nodeB = new RelayCleanupService(
      new RelayDatabase(ds2),
      k.options,
      now,
      new RelayMetrics(k.options),
    );
    const [a, b] = await Promise.all([nodeA.runOnce(), nodeB.runOnce()]);

    expect(a.mail + b.mail).toBe(expired);
    expect(a.rateLimits + b.rateLimits).toBe(30);
    // Bounded batches: ceil(12,345 / 1,000) = 13 mail statements at least, plus one per node and table for the rest.
    expect(a.statements + b.statements).toBeGreaterThanOrEqual(13 + 4);
    const left = await c.query<{ recipient: string; n: number }>(
      `SELECT recipient, count(*)::int AS n FROM usm_mail WHERE recipient = 'live' OR recipient LIKE 'r%' GROUP BY 1`,
    );
    expect(left.rows).toEqual([{ recipient: 'live', n: 50 }]);
  });

  it('stops after maxBatchesPerRun statements per table and finishes on the next run', async () => {
    const c = await pg.client();
    const now = new ManualClock(Date.UTC(2027, 0, 2));
    await c.query(
      `INSERT INTO usm_replay_nonces (nonce, expires_at)
       SELECT decode(lpad(to_hex(i), 64, '0'), 'hex'), $1::timestamptz - interval '1 minute' FROM generate_series(1, 250) AS i`,
      [new Date(now.now())],
    );
    const small = kit(ds, pg.url, { cleanup: { batchSize: 100, maxBatchesPerRun: 2 } });
    const cleanup = new RelayCleanupService(small.db, small.options, now, small.metrics);
    expect((await cleanup.runOnce()).replayNonces).toBe(200);
    expect((await cleanup.runOnce()).replayNonces).toBe(50);
    expect((await cleanup.runOnce()).replayNonces).toBe(0);
  });
});
