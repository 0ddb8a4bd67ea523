/**
 * The sample relay app as an operator runs it: the built app (`npm start` builds, then runs
 * `node apps/relay-server/dist/main.js`; here the same build, then the same command) started as a
 * child process, configured by environment variables only.
 *
 * - Without DATABASE_URL: embedded PostgreSQL in a temporary DATA_DIR. The banner says where it
 *   listens, the health and metrics URLs and the identity; /relay.json serves the key in the
 *   identity file; a client pinned to it authenticates (one pinned to another key is refused).
 *   SIGTERM stops it with exit code 0, no warning, and the embedded PostgreSQL stopped (its port
 *   closed). A restart on the same DATA_DIR has the same identity and the mail stored before.
 * - With DATABASE_URL: the same on that server.
 * - Invalid configuration exits with code 2 and a message that says what to fix.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeIdentityKeyPair,
  generateIdentityKeyPair,
  randomBytes,
  ready,
  toHex,
  type IdentityKeyPair,
} from '@usm/crypto';
import {
  ProtocolError,
  ProtocolErrorCode,
  addressOf,
  encodeEnvelope,
  formatAddress,
  generateMessageId,
  parseAddress,
  type AddressString,
} from '@usm/protocol';
import { withBuildLock } from '../../../test/support/build-lock.js';
import { REPO_ROOT, run } from '../../../test/support/pack.js';
import { usePostgres } from '../../../test/support/postgres.js';
import { ok, openSession, relayKeyFromHex } from '../../../test/support/relay-session.js';
import { freePort } from '../../../test/support/embedded-postgres.js';
import {
  RELAY_APP_BUILD_TIMEOUT_MS,
  RELAY_APP_MAIN,
  RELAY_APP_VARIABLES,
  RELAY_APP_WORKSPACES,
} from '../../../test/support/relay-app.js';

await ready();

const MAIN = RELAY_APP_MAIN;
/** What `npm start` builds before it runs the app (the web demo and client are not needed here). */
const BUILD_ORDER = RELAY_APP_WORKSPACES;
const BUILD_TIMEOUT_MS = RELAY_APP_BUILD_TIMEOUT_MS;
/** A hang guard, not a timing assertion: start-up includes initdb on a fresh DATA_DIR. */
const START_DEADLINE_MS = 90_000;
/** Every variable the app reads (config.ts): the child gets only what a test sets. */
const CONFIG_VARIABLES = RELAY_APP_VARIABLES;

/** Resolves with the error code of a TCP connect to 127.0.0.1:port ('connected' when it answers). */
function tcpProbe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RunningServer {
  readonly child: ChildProcess;
  readonly url: string;
  readonly banner: string;
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit. */
  stop(): Promise<Exit>;
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete out[name];
  return { ...out, ...env, NO_COLOR: '1' };
}

/** Runs the built app with `env`; resolves once the banner is printed (rejects if it exits first). */
async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const banner = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`no banner after ${START_DEADLINE_MS} ms\n${stdout}\n${stderr}`));
    }, START_DEADLINE_MS);
    const check = () => {
      const match = /^ {2}relay listening on [\s\S]*?^ {2}database: .*\n/m.exec(stdout);
      if (!match) return;
      clearTimeout(deadline);
      child.stdout?.off('data', check);
      resolve(match[0]);
    };
    child.stdout?.on('data', check);
    void exited.then((exit) => {
      clearTimeout(deadline);
      reject(new Error(`exited (${JSON.stringify(exit)}) before the banner\n${stdout}\n${stderr}`));
    });
  });
  const url = /relay listening on (http:\/\/\S+)/.exec(banner)?.[1] ?? '';
  return {
    child,
    url,
    banner,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs the app to its exit (for configurations it must refuse). */
function runToExit(env: Record<string, string>): Promise<Exit & { stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN], { cwd: REPO_ROOT, env: childEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The JSON log lines' levels that are warnings or worse, with their messages. */
function warnings(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level?: string; message?: unknown })
    .filter((entry) => entry.level === 'warn' || entry.level === 'error' || entry.level === 'fatal')
    .map((entry) => `${entry.level}: ${String(entry.message)}`);
}

/** The banner's lines for a relay at `url` with `identity` (fingerprint and pinned key). */
function expectBanner(banner: string, url: string, identity: IdentityKeyPair, created: boolean): void {
  const lines = banner.trimEnd().split('\n');
  expect(lines[0]).toBe(`  relay listening on ${url} (socket.io path /socket.io)`);
  expect(lines[1]).toBe(`  health:  ${url}/health`);
  expect(lines[2]).toBe(`  metrics: ${url}/metrics`);
  expect(lines[3]).toBe(
    `  relay identity ${created ? '(new) ' : ''}${identity.publicKey.fingerprint()}; ` +
      `clients pin public key ${toHex(identity.publicKey.bytes)}`,
  );
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** Health, metrics and /relay.json of a running server; returns the key /relay.json serves. */
async function expectOperations(server: RunningServer): Promise<string> {
  const health = await getJson(`${server.url}/health`);
  expect(health).toEqual({
    status: 200,
    body: expect.objectContaining({
      status: 'ok',
      info: { 'usm-relay-database': expect.objectContaining({ status: 'up' }) },
    }),
  });
  const metrics = await fetch(`${server.url}/metrics`);
  expect(metrics.status).toBe(200);
  expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await metrics.text();
  expect(text).toMatch(/^# TYPE usm_relay_connections gauge$/m);
  expect(text).toMatch(/^# TYPE usm_relay_messages_total counter$/m);
  const info = await getJson(`${server.url}/relay.json`);
  expect(info.status).toBe(200);
  const { publicKey, fingerprint } = info.body as { publicKey: string; fingerprint: string };
  expect(fingerprint).toBe(relayKeyFromHex(publicKey).fingerprint());
  return publicKey;
}

function envelopeTo(recipient: AddressString): Uint8Array {
  return encodeEnvelope({
    id: generateMessageId(),
    recipient: parseAddress(recipient),
    ciphertext: randomBytes(48),
  });
}

const addressOfIdentity = (identity: IdentityKeyPair): AddressString =>
  formatAddress(addressOf(identity.publicKey));

/** A temporary folder the embedded cluster's `postgres` system user can reach (mkdtemp makes 0700). */
async function reachableTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

describe('the sample relay app (apps/relay-server)', () => {
  beforeAll(async () => {
    await withBuildLock(async () => {
      for (const workspace of BUILD_ORDER) {
        await run('npm', ['run', 'build', '-w', workspace], REPO_ROOT, BUILD_TIMEOUT_MS);
      }
    });
  }, BUILD_TIMEOUT_MS * BUILD_ORDER.length);

  describe('without DATABASE_URL: embedded PostgreSQL in DATA_DIR', () => {
    let dataDir = '';
    let env: Record<string, string> = {};
    let embeddedPort = 0;
    let server: RunningServer | undefined;
    let relayKeyHex = '';
    const bob = generateIdentityKeyPair();
    const mail: { envelope: Uint8Array; sender: string } = { envelope: new Uint8Array(0), sender: '' };

    beforeAll(async () => {
      dataDir = await reachableTempDir('usm-relay-server-');
      embeddedPort = await freePort();
      env = {
        DATA_DIR: join(dataDir, 'data'),
        EMBEDDED_PG_PORT: String(embeddedPort),
        PORT: String(await freePort()),
      };
    });

    afterAll(async () => {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        await server.stop();
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('starts, prints where it listens, serves health, metrics and the identity in its file, and authenticates a client pinned to it', async () => {
      server = await startServer(env);
      const identity = decodeIdentityKeyPair(await readFile(join(env.DATA_DIR!, 'relay-identity.key')));
      expect(server.url).toBe(`http://localhost:${env.PORT}`);
      expectBanner(server.banner, server.url, identity, true);
      expect(server.banner).toContain(`  database: embedded PostgreSQL (${env.DATA_DIR})\n`);

      relayKeyHex = await expectOperations(server);
      expect(relayKeyHex).toBe(toHex(identity.publicKey.bytes));

      // Pinned to the served key: the handshake completes, and mail for bob (offline) is stored.
      const alice = await openSession(server.url, relayKeyFromHex(relayKeyHex));
      try {
        mail.envelope = envelopeTo(addressOfIdentity(bob));
        mail.sender = alice.address;
        const sent = ok(await alice.request('send', { envelopes: [mail.envelope] }));
        expect(sent.results).toEqual([{ status: 'stored', id: expect.any(String) }]);
      } finally {
        alice.close();
      }

      // Pinned to any other key: refused by the client, as a man in the middle would be.
      const other = generateIdentityKeyPair().publicKey;
      const refused = await openSession(server.url, other).then(
        () => 'authenticated',
        (err: unknown) => (err instanceof ProtocolError ? err.code : String(err)),
      );
      expect(refused).toBe(ProtocolErrorCode.IdentityMismatch);
    });

    it('stops on SIGTERM with exit code 0 and no warning, and stops its embedded PostgreSQL', async () => {
      if (!server) throw new Error('the server did not start in the previous test');
      expect(await tcpProbe(embeddedPort)).toBe('connected');
      const exit = await server.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(server.stdout()).toMatch(/"message":"SIGTERM: shutting down"/);
      expect(warnings(server.stdout())).toEqual([]);
      expect(warnings(server.stderr())).toEqual([]);
      expect(server.stderr()).toBe('');
      expect(await tcpProbe(embeddedPort)).toBe('ECONNREFUSED');
    });

    it('restarts on the same DATA_DIR with the same identity and the mail stored before the restart', async () => {
      server = await startServer(env);
      const identity = decodeIdentityKeyPair(await readFile(join(env.DATA_DIR!, 'relay-identity.key')));
      expectBanner(server.banner, server.url, identity, false);
      expect(await expectOperations(server)).toBe(relayKeyHex);

      const session = await openSession(server.url, relayKeyFromHex(relayKeyHex), bob);
      try {
        const page = ok(await session.request('fetch', {}));
        expect(page.mail).toHaveLength(1);
        expect(page.mail[0]?.sender).toBe(mail.sender);
        expect(toHex(page.mail[0]?.envelope ?? new Uint8Array(0))).toBe(toHex(mail.envelope));
      } finally {
        session.close();
      }
      expect(await server.stop()).toEqual({ code: 0, signal: null });
      expect(warnings(server.stdout())).toEqual([]);
      expect(await tcpProbe(embeddedPort)).toBe('ECONNREFUSED');
    });
  });

  describe('with DATABASE_URL', () => {
    const pg = usePostgres();
    let dataDir = '';
    let server: RunningServer | undefined;

    afterAll(async () => {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        await server.stop();
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('runs on that server: banner, health, a pinned handshake, store and fetch; SIGTERM exits 0 without a warning', async () => {
      dataDir = await reachableTempDir('usm-relay-server-url-');
      server = await startServer({
        DATABASE_URL: pg.url,
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
      });
      const identity = decodeIdentityKeyPair(await readFile(join(dataDir, 'relay-identity.key')));
      expectBanner(server.banner, server.url, identity, true);
      expect(server.banner).toContain('  database: DATABASE_URL\n');
      const key = relayKeyFromHex(await expectOperations(server));

      const bob = await openSession(server.url, key);
      const alice = await openSession(server.url, key);
      try {
        const envelope = envelopeTo(bob.address);
        ok(await alice.request('send', { envelopes: [envelope] }));
        const page = ok(await bob.request('fetch', {}));
        expect(page.mail.map((m) => toHex(m.envelope))).toEqual([toHex(envelope)]);
      } finally {
        alice.close();
        bob.close();
      }

      // The relay's tables are in that database.
      const c = await pg.client();
      const rows = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM usm_mail');
      expect(rows.rows[0]?.n).toBe(1);

      expect(await server.stop()).toEqual({ code: 0, signal: null });
      expect(warnings(server.stdout())).toEqual([]);
      expect(server.stderr()).toBe('');
    });
  });

  describe('invalid configuration', () => {
    it.each([
      [{ PORT: 'abc' }, 'relay-server: PORT must be a whole number from 0 to 65535; got "abc"'],
      [
        { LOG_LEVEL: 'loud' },
        'relay-server: LOG_LEVEL must be one of error, warn, log, debug, verbose; got "loud"',
      ],
      [{ RATE_LIMITS: 'sometimes' }, 'relay-server: RATE_LIMITS must be "on" or "off"; got "sometimes"'],
      [
        { DATABASE_URL: 'mysql://db/relay' },
        'relay-server: DATABASE_URL must look like postgres://user:password@host:5432/database',
      ],
    ])('%j exits with code 2 and says what to fix', async (env, message) => {
      const exit = await runToExit(env);
      expect(exit).toEqual({ code: 2, signal: null, stdout: '', stderr: `${message}\n` });
    });
  });
});
