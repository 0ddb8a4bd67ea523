/**
 * RelayDatabase on a real PostgreSQL: a transaction's connection that dies under it (the
 * database stopped, an operator's pg_terminate_backend) fails that transaction with a
 * RelayDatabaseError and nothing else: the process must not see an unhandled 'error' event
 * (pg-pool takes its own listener off a client it hands out). Found by the reliability suite's
 * PostgreSQL outage case (test/reliability/faults.spec.ts, F2), where a relay node exited.
 */
import type { DataSource } from 'typeorm';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import { RelayDatabase, RelayDatabaseError } from '../src/relay-database.js';

describe('RelayDatabase', () => {
  const pg = usePostgres();
  let ds: DataSource;
  let db: RelayDatabase;

  beforeAll(async () => {
    ds = await pg.dataSource({ poolSize: 2 });
    await runMigrations(ds);
    db = new RelayDatabase(ds);
  });

  it('a transaction whose connection is terminated between two statements fails with RelayDatabaseError; the pool goes on', async () => {
    const admin = await pg.client();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const outcome = await db
        .transaction(async (sql) => {
          const { rows } = await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          const pid = rows[0]!.pid;
          await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          // The backend is gone once it leaves pg_stat_activity; its FATAL message and the closed
          // socket reach our idle client meanwhile (no statement of ours is in flight then).
          for (let i = 0; i < 200; i++) {
            const left = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
            if (left.rowCount === 0) break;
          }
          await new Promise((r) => setImmediate(r));
          await sql.query('SELECT 1');
          return 'committed';
        })
        .catch((err: unknown) => err);
      expect(outcome).toBeInstanceOf(RelayDatabaseError);
      expect(uncaught).toEqual([]);
      // The dead connection was discarded: the next statements run on a fresh one.
      const { rows } = await db.query<{ one: number }>('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
      expect(await db.transaction(async (sql) => (await sql.query('SELECT 2 AS two')).rows)).toEqual([
        { two: 2 },
      ]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
