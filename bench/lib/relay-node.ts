/**
 * Relay nodes for the benchmark: the built sample app (apps/relay-server/dist/main.js) run as
 * child processes, as an operator runs it. Not the module inside the bench process: the bench
 * runs under tsx (esbuild), which emits no decorator metadata, and NestJS injects by those types.
 *
 * Every node of a run shares one relay identity (a key file written here, 0600), which the
 * bench's clients pin, and runs with RATE_LIMITS=off and LOG_LEVEL=warn.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type IdentityKeyPair, generateIdentityKeyPair, ready } from '@usm/crypto';
import { RELAY_APP_MAIN, RELAY_APP_WORKSPACES, relayAppIsStale } from '../../test/support/relay-app.js';
import { type Child, GC_HOOK, startChild } from './children.js';
import { ROOT } from './results.js';

const MAIN = RELAY_APP_MAIN;

let built = false;

/**
 * Builds the sample relay (`npm run build` of the workspaces it is made of, in order) when its
 * dist is missing or older than a source file. Returns true when it built.
 */
export function ensureRelayBuilt(): boolean {
  if (built) return false;
  built = true;
  if (!relayAppIsStale()) return false;
  for (const workspace of RELAY_APP_WORKSPACES) {
    execFileSync('npm', ['run', 'build', '-w', workspace], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return true;
}

let identity: { keyPair: IdentityKeyPair; file: string; dataDir: string } | undefined;

/** The relay identity of this run (clients pin its public key) and the key file the nodes load. */
export async function relayIdentity(): Promise<{ keyPair: IdentityKeyPair; file: string; dataDir: string }> {
  if (!identity) {
    await ready();
    const dataDir = mkdtempSync(join(tmpdir(), 'usm-bench-relay-'));
    const keyPair = generateIdentityKeyPair();
    const file = join(dataDir, 'relay-identity.key');
    writeFileSync(file, keyPair.secretKey.encode(), { mode: 0o600 });
    identity = { keyPair, file, dataDir };
  }
  return identity;
}

export interface RelayNode {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly child: Child;
  stop(): Promise<void>;
}

export interface RelayNodeOptions {
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=...` (BENCH_CPU_PROF does that for every node). */
  readonly nodeArgs?: readonly string[];
  /** Extra environment of the sample app. */
  readonly env?: Record<string, string>;
}

/**
 * Starts one node of the sample relay on `databaseUrl` and waits until it listens.
 * With BENCH_CPU_PROF=<dir> in the environment, every node writes a CPU profile there on exit.
 */
export async function startRelayNode(
  databaseUrl: string,
  options: RelayNodeOptions = {},
): Promise<RelayNode> {
  ensureRelayBuilt();
  const { file, dataDir } = await relayIdentity();
  const profile = process.env['BENCH_CPU_PROF'];
  const child = startChild(
    [
      ...GC_HOOK,
      ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
      ...(options.nodeArgs ?? []),
      MAIN,
    ],
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      RELAY_IDENTITY_FILE: file,
      RATE_LIMITS: 'off',
      LOG_LEVEL: 'warn',
      WEB_DEMO_DIR: dataDir,
      ...options.env,
    },
    'relay node',
  );
  const m = await child.waitFor(/relay listening on https?:\/\/[^:\s]+:(\d+)/);
  return { url: `http://127.0.0.1:${m[1]}`, child, stop: () => child.stop() };
}
