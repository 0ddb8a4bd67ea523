/**
 * The drop-in proof: an existing NestJS backend, outside the repository, installs the packed
 * relay and mounts it beside its own REST controller and its own TypeORM connection.
 *
 * `npm pack` @usm/crypto, @usm/protocol and @usm/relay (each prepack builds it; in dependency
 * order), install the three tarballs and the host's own Nest packages (the versions the
 * repository's lock file pins) into a fresh ESM project in os.tmpdir(), and run a plain-JS host
 * app there (no TypeScript, no decorator syntax: Nest's decorators applied as functions). It
 * imports MessengerRelayModule.forRootAsync beside TypeOrmModule.forRoot and its GET /hello. On
 * a real PostgreSQL: /hello answers from the host's own table, /health reports the relay's
 * database up, and a socket.io client completes the handshake pinned to the relay key and
 * stores, fetches and acks an envelope.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentityKeyPair, randomBytes, ready, toHex } from '@usm/crypto';
import {
  encodeEnvelope,
  formatMessageId,
  generateMessageId,
  parseAddress,
  peekEnvelopeRoute,
} from '@usm/protocol';
import { withBuildLock } from '../support/build-lock.js';
import {
  REPO_ROOT,
  createScratchApp,
  createTempRoot,
  isInside,
  libDir,
  packWorkspace,
  type PackedPackage,
  type TempRoot,
} from '../support/pack.js';
import { freePort } from '../support/embedded-postgres.js';
import { usePostgres } from '../support/postgres.js';
import { ok, openSession } from '../support/relay-session.js';

await ready();

/** Packing builds three libraries; installing may fetch from the registry on a fresh machine. */
const SETUP_TIMEOUT_MS = 900_000;
/** A hang guard for the host app's start-up, not a timing assertion. */
const START_DEADLINE_MS = 90_000;

/** The host's own packages, at the versions the repository's lock file pins. */
const HOST_PACKAGES = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/platform-express',
  '@nestjs/websockets',
  '@nestjs/platform-socket.io',
  '@nestjs/typeorm',
  'typeorm',
  'reflect-metadata',
  'rxjs',
  'pg',
];

async function pinnedHostPackages(): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  return HOST_PACKAGES.map((name) => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) throw new Error(`package-lock.json pins no version of ${name}`);
    return `${name}@${version}`;
  });
}

/**
 * The host app: plain ESM JavaScript, as an existing backend would add the relay. Its own
 * TypeORM connection (an entity of its own, `host_note`) and controller; the relay's options
 * come from an async factory. Prints one JSON line when it listens.
 */
const HOST_APP = `
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Controller, Get, Inject, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { EntitySchema } from 'typeorm';
import { decodeIdentityKeyPair, ready } from '@usm/crypto';
import { MessengerRelayModule } from '@usm/relay';

const { PORT, DATABASE_URL, RELAY_IDENTITY_FILE } = process.env;

const HostNote = new EntitySchema({
  name: 'HostNote',
  tableName: 'host_note',
  columns: {
    id: { type: Number, primary: true, generated: true },
    text: { type: String },
  },
});

class HelloController {
  constructor(dataSource) {
    this.dataSource = dataSource;
  }
  async hello() {
    const notes = this.dataSource.getRepository(HostNote);
    await notes.save({ text: 'hello' });
    return { hello: 'from the host app', notes: await notes.count() };
  }
}
Inject(getDataSourceToken())(HelloController, undefined, 0);
Controller()(HelloController);
Get('hello')(HelloController.prototype, 'hello', Object.getOwnPropertyDescriptor(HelloController.prototype, 'hello'));

class AppModule {}
Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, entities: [HostNote], synchronize: true }),
    MessengerRelayModule.forRootAsync({
      useFactory: async () => {
        await ready();
        return {
          identity: decodeIdentityKeyPair(await readFile(RELAY_IDENTITY_FILE)),
          database: { url: DATABASE_URL },
        };
      },
    }),
  ],
  controllers: [HelloController],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
await app.listen(Number(PORT), '127.0.0.1');
console.log(JSON.stringify({
  listening: 'http://127.0.0.1:' + PORT,
  relay: fileURLToPath(import.meta.resolve('@usm/relay')),
  crypto: fileURLToPath(import.meta.resolve('@usm/crypto')),
}));
`;

interface HostStarted {
  listening: string;
  relay: string;
  crypto: string;
}

describe('@usm/relay dropped into an existing Nest app outside the repository', () => {
  const pg = usePostgres();
  const relayIdentity = generateIdentityKeyPair();
  let tmp: TempRoot | undefined;
  let packed: PackedPackage[] = [];
  let appDir = '';
  let host: ChildProcess | undefined;
  let started: HostStarted;
  let output = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  beforeAll(async () => {
    tmp = await createTempRoot('usm-relay-drop-in-');
    const tarballs = tmp.path('tarballs');
    packed = await withBuildLock(async () => {
      const out: PackedPackage[] = [];
      for (const lib of ['crypto', 'protocol', 'relay']) out.push(await packWorkspace(libDir(lib), tarballs));
      return out;
    });
    const app = await createScratchApp(tmp.path('host-app'), 'usm-relay-drop-in-host');
    appDir = app.dir;
    await app.install([...packed.map((p) => p.tarball), ...(await pinnedHostPackages())]);

    const identityFile = join(appDir, 'relay-identity.key');
    await writeFile(identityFile, relayIdentity.secretKey.encode(), { mode: 0o600 });
    await writeFile(join(appDir, 'main.mjs'), HOST_APP);

    const port = await freePort();
    const child = spawn(process.execPath, ['main.mjs'], {
      cwd: appDir,
      env: { ...process.env, PORT: String(port), DATABASE_URL: pg.url, RELAY_IDENTITY_FILE: identityFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    host = child;
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    started = await new Promise<HostStarted>((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`the host app did not start in ${START_DEADLINE_MS} ms:\n${output}`)),
        START_DEADLINE_MS,
      );
      const check = () => {
        const line = output.split('\n').find((l) => l.startsWith('{"listening"'));
        if (!line) return;
        clearTimeout(deadline);
        resolve(JSON.parse(line) as HostStarted);
      };
      child.stdout?.on('data', check);
      void exited.then((exit) => {
        clearTimeout(deadline);
        reject(new Error(`the host app exited (${JSON.stringify(exit)}) during start-up:\n${output}`));
      });
    });
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    if (host && host.exitCode === null && host.signalCode === null) {
      host.kill('SIGTERM');
      const killer = setTimeout(() => host?.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
    await tmp?.cleanup();
  }, 60_000);

  it('packs the three libraries and runs them from the host app install, not from the repository', async () => {
    expect(packed.map((p) => p.name)).toEqual(['@usm/crypto', '@usm/protocol', '@usm/relay']);
    // The relay ships its migrations with it.
    expect(packed[2]?.files.some((f) => /^dist\/migrations\/.+\.js$/.test(f))).toBe(true);
    expect(isInside(started.relay, join(appDir, 'node_modules', '@usm', 'relay'))).toBe(true);
    expect(isInside(started.crypto, join(appDir, 'node_modules', '@usm', 'crypto'))).toBe(true);
    expect(isInside(appDir, await realpath(REPO_ROOT))).toBe(false);
  });

  it("serves the host's own route from the host's own TypeORM connection", async () => {
    const res = await fetch(`${started.listening}/hello`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'from the host app', notes: expect.any(Number) });
    const c = await pg.client();
    const notes = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM host_note');
    expect(notes.rows[0]?.n).toBeGreaterThanOrEqual(1);
  });

  it("reports the relay's database up on /health", async () => {
    const res = await fetch(`${started.listening}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(
      expect.objectContaining({
        status: 'ok',
        info: { 'usm-relay-database': expect.objectContaining({ status: 'up' }) },
      }),
    );
  });

  it('authenticates clients pinned to the relay key, then stores, fetches and acks an envelope', async () => {
    const alice = await openSession(started.listening, relayIdentity.publicKey);
    const bob = await openSession(started.listening, relayIdentity.publicKey);
    try {
      const envelope = encodeEnvelope({
        id: generateMessageId(),
        recipient: parseAddress(bob.address),
        ciphertext: randomBytes(64),
      });
      const id = formatMessageId(peekEnvelopeRoute(envelope).id);
      expect(ok(await alice.request('send', { envelopes: [envelope] })).results).toEqual([
        { status: 'stored', id },
      ]);
      const page = ok(await bob.request('fetch', {}));
      expect(page.mail.map((m) => ({ sender: m.sender, envelope: toHex(m.envelope) }))).toEqual([
        { sender: alice.address, envelope: toHex(envelope) },
      ]);
      expect(ok(await bob.request('ack', { ids: [id] })).deleted).toBe(1);
      expect(ok(await bob.request('fetch', {})).mail).toEqual([]);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it("keeps the relay in tables of its own beside the host's, with its own migration history", async () => {
    const c = await pg.client();
    const tables = await c.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name IN ('host_note', 'usm_mail', 'usm_migrations')
        ORDER BY table_name`,
    );
    expect(tables.rows.map((r) => r.name)).toEqual(['host_note', 'usm_mail', 'usm_migrations']);
  });

  it('stops on SIGTERM (Nest shutdown hooks) without a warning or an error', async () => {
    host?.kill('SIGTERM');
    const exit = await exited;
    // enableShutdownHooks re-raises the signal after closing the app.
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    const problems = output
      .split('\n')
      .filter((line) => /\bWARN\b|\bERROR\b|"level":"(warn|error)"/.test(line));
    expect(problems).toEqual([]);
  });
});
