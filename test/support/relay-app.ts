/**
 * The built sample relay (apps/relay-server/dist/main.js) for tests and benchmarks that run relay
 * nodes as child processes: what it is built from, the environment variables it reads (a child gets
 * only those a test sets), and a build-if-stale step under the repository's build lock.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { withBuildLock } from './build-lock.js';
import { REPO_ROOT, run } from './pack.js';

export const RELAY_APP_MAIN = join(REPO_ROOT, 'apps', 'relay-server', 'dist', 'main.js');
/** What the built relay is made of, in build order (the client and the web demo are not). */
export const RELAY_APP_WORKSPACES = ['libs/crypto', 'libs/protocol', 'libs/relay', 'apps/relay-server'];
const SOURCES = RELAY_APP_WORKSPACES.map((w) => join(w, 'src'));
export const RELAY_APP_BUILD_TIMEOUT_MS = 300_000;

/** Every variable the app reads (apps/relay-server/src/config.ts). */
export const RELAY_APP_VARIABLES = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'EMBEDDED_PG_PORT',
  'DATA_DIR',
  'RELAY_IDENTITY_FILE',
  'LOG_LEVEL',
  'ALLOWED_ORIGINS',
  'MAIL_TTL_SECONDS',
  'CLEANUP_CRON',
  'CLEANUP_BATCH_SIZE',
  'RATE_LIMITS',
  'TRUST_PROXY',
  'WEB_DEMO_DIR',
] as const;

function newestSource(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) t = Math.max(t, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts'))
      t = Math.max(t, statSync(path).mtimeMs);
  }
  return t;
}

/** True when dist/main.js is missing or older than one of its sources. */
export function relayAppIsStale(): boolean {
  if (!existsSync(RELAY_APP_MAIN)) return true;
  const built = statSync(RELAY_APP_MAIN).mtimeMs;
  return SOURCES.some((dir) => newestSource(join(REPO_ROOT, dir)) > built);
}

/** Builds the relay app's workspaces, in order, when stale; true if it built. */
export function ensureRelayAppBuilt(): Promise<boolean> {
  return withBuildLock(async () => {
    if (!relayAppIsStale()) return false;
    for (const w of RELAY_APP_WORKSPACES) {
      await run('npm', ['run', 'build', '-w', w], REPO_ROOT, RELAY_APP_BUILD_TIMEOUT_MS);
    }
    return true;
  });
}
