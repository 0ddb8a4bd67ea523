/**
 * Test support: one build of the workspace packages at a time, across jest workers. Specs that
 * build (`npm run build -w ...`) or pack (`npm pack`, whose prepack builds) write the same dist/
 * folders; two tsc runs, or a tsc and a tar, on the same files at once could leave a truncated file
 * in a tarball. The lock is a directory in os.tmpdir() named after the repository (mkdir is atomic);
 * a lock whose owner process is gone is taken over.
 *
 * @example
 * await withBuildLock(() => packWorkspace(libDir('crypto'), dest));
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from './pack.js';

const LOCK_DIR = join(
  tmpdir(),
  `usm-build-lock-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 12)}`,
);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquire(): Promise<void> {
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      await writeFile(join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(join(LOCK_DIR, 'pid'), 'utf8').catch(() => ''));
    // No pid yet: the owner is between mkdir and writeFile. A dead owner's lock is taken over.
    if (owner > 0 && !alive(owner)) await rm(LOCK_DIR, { recursive: true, force: true });
    else await sleep(200);
  }
}

/** Runs `fn` while holding the repository's build lock. */
export async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  await acquire();
  try {
    return await fn();
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
}
