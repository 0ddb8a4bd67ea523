import { usePostgres, runMigrations } from '../../../test/support/postgres.js';
import { runRelayMigrations } from '../src/database/relay-database.js';

describe('relay migrations', () => {
  const pg = usePostgres();

  it('create every table once, even when two nodes run them at the same time', async () => {
    const [a, b] = await Promise.all([pg.dataSource(), pg.dataSource()]);
    const applied = await Promise.all([runRelayMigrations(a), runRelayMigrations(b)]);
    // Exactly one of the two nodes applied the migration; the other found it done.
    expect(applied.flat()).toEqual([
      'RelayInitialSchema1795600000000',
      'SocketIoAttachments1795700000000',
      'StoreMailFunction1795800000000',
    ]);
    await runMigrations(a);

    const c = await pg.client();
    const tables = await c.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
    );
    expect(tables.rows.map((r) => r.tablename)).toEqual([
      'socket_io_attachments',
      'usm_mail',
      'usm_mailbox_counts',
      'usm_migrations',
      'usm_one_time_prekeys',
      'usm_prekeys',
      'usm_rate_limits',
      'usm_replay_nonces',
    ]);
    const history = await c.query(`SELECT name FROM usm_migrations`);
    expect(history.rowCount).toBe(3);
    const functions = await c.query<{ proname: string }>(
      `SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname`,
    );
    expect(functions.rows.map((r) => r.proname)).toEqual([
      'usm_mail_count_deleted',
      'usm_mail_count_inserted',
      'usm_store_mail',
    ]);
  });
});
