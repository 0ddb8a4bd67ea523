/**
 * The built sample relay (`node apps/relay-server/dist/main.js`, what `npm start` runs) as a
 * CHILD PROCESS on a PostgreSQL the test owns: whatever a hostile client does to it, the test
 * process survives, and the relay's own exit and its log lines are what the test checks.
 * Built first (under the repository's build lock) when dist/main.js is missing or older than a source.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityPublicKey, fromHex } from '@usm/crypto';
import { REPO_ROOT } from '../../support/pack.js';
import { freePort } from '../../support/embedded-postgres.js';
import { RELAY_APP_MAIN, RELAY_APP_VARIABLES, ensureRelayAppBuilt } from '../../support/relay-app.js';

const MAIN = RELAY_APP_MAIN;
const APP_VARIABLES = RELAY_APP_VARIABLES;
/** A hang guard for start-up, not a timing assertion. */
const START_DEADLINE_MS = 60_000;

/** Builds the relay app when stale (test/support/relay-app.ts); true if it built. */
export const ensureRelayBuilt = ensureRelayAppBuilt;

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly context?: string;
}

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly relayKey: IdentityPublicKey;
  /** Resolves when the process exits (for whatever reason). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while it runs. */
  alive(): boolean;
  /** The JSON log lines so far. */
  logs(): LogLine[];
  stderr(): string;
  /** SIGTERM, then the exit; removes its data directory. */
  stop(): Promise<void>;
}

/** Starts the built app on `databaseUrl` with `env`, resolving once its banner is printed. */
export async function startRelayProcess(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<RelayProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'usm-reliability-relay-'));
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of APP_VARIABLES) delete base[name];
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: {
      ...base,
      DATABASE_URL: databaseUrl,
      PORT: String(await freePort()),
      DATA_DIR: dataDir,
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let running = true;
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    }),
  );
  const banner = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay: no banner after ${START_DEADLINE_MS} ms\n${stdout}\n${stderr}`));
    }, START_DEADLINE_MS);
    const check = () => {
      const match = /^ {2}relay listening on [\s\S]*?^ {2}database: .*\n/m.exec(stdout);
      if (!match) return;
      clearTimeout(deadline);
      child.stdout!.off('data', check);
      resolve(match[0]);
    };
    child.stdout!.on('data', check);
    void exited.then((exit) => {
      clearTimeout(deadline);
      reject(new Error(`relay exited (${JSON.stringify(exit)}) before its banner\n${stdout}\n${stderr}`));
    });
  });
  const url = (/relay listening on (http:\/\/\S+)/.exec(banner)?.[1] ?? '').replace('localhost', '127.0.0.1');
  const keyHex = /clients pin public key ([0-9a-f]{64})/.exec(banner)?.[1] ?? '';
  return {
    child,
    url,
    relayKey: new IdentityPublicKey(fromHex(keyHex)),
    exited,
    alive: () => running,
    logs: () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogLine),
    stderr: () => stderr,
    stop: async () => {
      if (running) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
