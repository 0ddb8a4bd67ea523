/**
 * RelayDatabase on a real PostgreSQL: a transaction's connection that dies under it (the
 * database stopped, an operator's pg_terminate_backend) fails that transaction with a
 * RelayDatabaseError and nothing else: the process must not see an unhandled 'error' event
 * (pg-pool takes its own listener off a client it hands out). Found by the reliability suite's
 * PostgreSQL outage case (test/reliability/faults.spec.ts, F2), where a relay node exited. A failed
 * statement leaves as its SQLSTATE and the schema objects it names: PostgreSQL's message and detail
 * quote values a client sent, and the exception filter logged them.
 */
import type { Logger } from '@nestjs/common';
import { ProtocolErrorCode } from '@usm/protocol';
import type { DataSource } from 'typeorm';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import { RelayDatabase, RelayDatabaseError } from '../src/database/relay-database.js';
import { UNAVAILABLE_RETRY_AFTER_MS, toErrorReply } from '../src/relay-exception.filter.js';
import { RELAY_MESSAGES as M } from '../src/relay.messages.js';

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
  it('a failed statement leaves as its SQLSTATE and the objects it names; no log line quotes the value PostgreSQL quoted', async () => {
    const value = '9999999999999999999';
    const lines: string[] = [];
    const logger = {
      error: (...args: unknown[]) => void lines.push(args.map(String).join(' ')),
    } as unknown as Logger;
    // PostgreSQL's own message quotes the parameter: that is what the relay used to log.
    const raw = await (await pg.client()).query('SELECT $1::bigint', [value]).catch((e: unknown) => e);
    expect(raw).toMatchObject({ code: '22003' });
    expect((raw as Error).message).toContain(value);

    const outOfRange = await db.query('SELECT $1::bigint', [value]).catch((e: unknown) => e);
    expect(outOfRange).toBeInstanceOf(RelayDatabaseError);
    expect(outOfRange).toMatchObject({ sqlState: '22003', objects: '', message: M.database('22003') });
    expect(JSON.stringify(outOfRange)).not.toContain(value);
    expect(toErrorReply(outOfRange, 'fetch', logger)).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Unavailable,
      message: M.database('22003'),
      retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
    });
    expect(lines).toEqual([M.databaseFailed('fetch', '22003', '')]);

    // A unique violation names its table and constraint; the key its detail quotes stays out.
    const recipient = `mallory-${value}.1`;
    const insert = `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
                    VALUES ($1, $2, $1, $2, now(), now() + interval '1 day')`;
    await db.query(insert, [recipient, Buffer.alloc(16)]);
    const duplicate = await db.query(insert, [recipient, Buffer.alloc(16)]).catch((e: unknown) => e);
    expect(duplicate).toMatchObject({
      sqlState: '23505',
      objects: 'table usm_mail, constraint usm_mail_pkey',
    });
    toErrorReply(duplicate, 'send', logger);
    expect(lines[1]).toBe(M.databaseFailed('send', '23505', 'table usm_mail, constraint usm_mail_pkey'));
    expect(lines.join('\n')).not.toContain(value);
  });
});
