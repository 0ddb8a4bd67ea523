/**
 * Test support: pack workspace libraries with `npm pack` and install the tarballs into a scratch
 * project outside the repository, the way an outside app would depend on them. Used by the
 * "an outside app can depend on it" tests (libs/crypto/test/package.spec.ts; the relay's fixture app).
 *
 * Every command runs through execFile (no shell, arguments never concatenated into a string).
 * Everything is written under one temporary root in os.tmpdir(); call `cleanup()` when done.
 *
 * @example
 * const tmp = await createTempRoot('usm-pack-');
 * const crypto = await packWorkspace(libDir('crypto'), tmp.path('tarballs'));
 * const app = await createScratchApp(tmp.path('app'));
 * await app.install([crypto.tarball]);
 * const out = await app.runScript('check.mjs', "import { ready } from '@usm/crypto'; await ready();");
 * await tmp.cleanup();
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/support/pack.ts). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** libs/<name> in the repository. */
export function libDir(name: string): string {
  return join(REPO_ROOT, 'libs', name);
}

/** Generous per-command limits: a fresh CI machine may fetch dependencies from the registry. */
export const PACK_TIMEOUT_MS = 180_000;
export const INSTALL_TIMEOUT_MS = 240_000;
export const SCRIPT_TIMEOUT_MS = 60_000;

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * npm passes its own state to the scripts it runs (npm_lifecycle_*, npm_package_*, and config such
 * as the workspace selected with `npm test -w ...`). A child npm working in a scratch project must
 * not inherit that, or it would act on the repository's workspaces instead. Ordinary configuration
 * (cache, registry, proxy, CA) is kept.
 */
const INHERITED_NPM_STATE =
  /^npm_(lifecycle_|package_|command$|config_(workspaces?|include_workspace_root|local_prefix|global|location|prefix)$)/i;

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!INHERITED_NPM_STATE.test(key)) env[key] = value;
  }
  env.NO_COLOR = '1'; // plain captured output
  return env;
}

/** Runs `file args...` in `cwd` without a shell; rejects with the command's output on failure. */
export function run(
  file: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed after ${timeoutMs} ms` : `exit code ${String(error.code)}`;
          reject(
            new Error(
              `${file} ${args.join(' ')} (in ${cwd}) failed: ${how}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
          return;
        }
        resolvePromise({ stdout, stderr });
      },
    );
  });
}

export interface TempRoot {
  /** The absolute, symlink-free path of the root. */
  readonly dir: string;
  /** A path under the root. */
  path(...parts: string[]): string;
  /** Removes the root and everything in it. */
  cleanup(): Promise<void>;
}

/**
 * A fresh directory under os.tmpdir(). Refuses to work inside the repository (a TMPDIR pointing
 * into it), since then Node and npm would find the repository's node_modules and the test would
 * prove nothing.
 */
export async function createTempRoot(prefix: string): Promise<TempRoot> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), prefix)));
  if (isInside(dir, await realpath(REPO_ROOT))) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`the temporary directory ${dir} is inside the repository: set TMPDIR elsewhere`);
  }
  return {
    dir,
    path: (...parts) => join(dir, ...parts),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** True when `path` is `parent` or below it. */
export function isInside(path: string, parent: string): boolean {
  const rel = relative(parent, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export interface PackedPackage {
  /** Absolute path of the .tgz. */
  readonly tarball: string;
  readonly name: string;
  readonly version: string;
  /** Every file in the tarball, relative to the package root (the `package/` prefix removed), sorted. */
  readonly files: readonly string[];
}

/**
 * `npm pack` of the workspace at `packageDir` into `destination` (created if missing). npm runs the
 * package's `prepack` script, which builds dist/. The file list is read back from the tarball
 * itself with `tar`, not taken from npm's report.
 */
export async function packWorkspace(packageDir: string, destination: string): Promise<PackedPackage> {
  await mkdir(destination, { recursive: true });
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--pack-destination', destination],
    packageDir,
    PACK_TIMEOUT_MS,
  );
  let report: { filename: string; name: string; version: string }[];
  try {
    report = JSON.parse(stdout) as typeof report;
  } catch {
    throw new Error(`npm pack in ${packageDir} printed no JSON report:\n${stdout}`);
  }
  const entry = report[0];
  if (report.length !== 1 || !entry)
    throw new Error(`npm pack in ${packageDir} made ${report.length} tarballs`);
  const tarball = join(destination, entry.filename);
  const listing = await run('tar', ['-tzf', tarball], destination, PACK_TIMEOUT_MS);
  const files = listing.stdout
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''))
    .sort();
  return { tarball, name: entry.name, version: entry.version, files };
}

export interface ScratchApp {
  readonly dir: string;
  /**
   * `npm install` the given tarballs (and their registry dependencies) in one call, so that a
   * tarball depending on another @usm package (relay -> crypto, protocol) is satisfied by the
   * tarball given beside it. Uses the npm cache first; the registry only for what it lacks.
   */
  install(tarballs: readonly string[]): Promise<CommandResult>;
  /** Writes `source` to `fileName` in the app and runs it with plain `node`; returns its stdout. */
  runScript(fileName: string, source: string): Promise<string>;
}

/** A minimal ESM project (`"type": "module"`, private) in `dir`, which must be outside the repository. */
export async function createScratchApp(dir: string, name = 'usm-scratch-app'): Promise<ScratchApp> {
  if (isInside(resolve(dir), REPO_ROOT))
    throw new Error(`the scratch app ${dir} must be outside the repository`);
  await mkdir(dir, { recursive: true });
  const manifest = { name, version: '0.0.0', private: true, type: 'module' };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return {
    dir,
    install: (tarballs) =>
      run(
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier', ...tarballs],
        dir,
        INSTALL_TIMEOUT_MS,
      ),
    async runScript(fileName, source) {
      await writeFile(join(dir, fileName), source);
      const { stdout } = await run(process.execPath, [fileName], dir, SCRIPT_TIMEOUT_MS);
      return stdout;
    },
  };
}
