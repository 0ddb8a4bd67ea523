/**
 * bench/results/latest.json: flat dotted keys with numbers (`crypto.ours_msgs_per_s_1k`) plus a
 * `meta` block describing the machine and the runs. A run replaces the keys of the sections it
 * ran and keeps every other key, so sections can be re-run one at a time (`--only=`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS_FILE = join(ROOT, 'bench/results/latest.json');

/** When and how one section was last measured. */
export interface SectionRun {
  readonly date: string;
  readonly quick: boolean;
  readonly command: string;
  readonly seconds: number;
  readonly commit: string;
  /** The 1-minute load average when the section started: other work on a shared machine. */
  readonly loadAverage: number;
}

export interface Meta {
  /** The last invocation: its date, command and whether it was `--quick`. */
  date: string;
  command: string;
  quick: boolean;
  sectionsRun: string[];
  commit: string;
  node: string;
  v8: string;
  openssl: string;
  os: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  /** Versions of the packages measured or measured against (merged across runs). */
  packages: Record<string, string>;
  /** Per section: its last run (merged across runs). */
  sections: Record<string, SectionRun>;
}

export interface Results {
  meta: Meta;
  values: Record<string, number>;
}

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

/** The commit measured, marked when the tree has uncommitted changes. */
export function currentCommit(): string {
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  return git('status', '--porcelain', '--untracked-files=no')
    ? `${head} (tree with uncommitted changes)`
    : head;
}

/** The 1-minute load average, two decimals. */
export function loadAverage(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

export function packageVersion(name: string): string {
  try {
    const json = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return json.version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

export function machineMeta(command: string, quick: boolean, sectionsRun: string[]): Meta {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    command,
    quick,
    sectionsRun,
    commit: currentCommit(),
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl ?? 'none',
    os: `${platform()} ${release()} ${arch()}`,
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    packages: {},
    sections: {},
  };
}

export function loadResults(): Results | undefined {
  if (!existsSync(RESULTS_FILE)) return undefined;
  const raw = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>;
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'meta' && typeof value === 'number') values[key] = value;
  }
  return { meta: raw.meta as Meta, values };
}

/**
 * `previous` with section `id`'s keys replaced by `fresh` (keyed without prefix); meta from
 * `meta`, its per-section runs and package versions merged over the previous ones.
 */
export function mergeSection(
  previous: Results | undefined,
  meta: Meta,
  id: string,
  fresh: ReadonlyMap<string, number>,
  run: SectionRun,
  packages: Record<string, string>,
): Results {
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(previous?.values ?? {})) {
    if (!key.startsWith(`${id}.`)) values[key] = value;
  }
  // Five significant digits: more would only record the noise.
  for (const [key, value] of fresh) values[`${id}.${key}`] = Number(value.toPrecision(5));
  return {
    meta: {
      ...meta,
      packages: { ...previous?.meta.packages, ...meta.packages, ...packages },
      sections: { ...previous?.meta.sections, ...meta.sections, [id]: run },
    },
    values,
  };
}

/** Writes the file atomically: keys sorted, `meta` first. */
export function saveResults(results: Results): void {
  const sorted = Object.fromEntries(Object.entries(results.values).sort(([a], [b]) => a.localeCompare(b)));
  const tmp = `${RESULTS_FILE}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ meta: results.meta, ...sorted }, null, 2)}\n`);
  renameSync(tmp, RESULTS_FILE);
}
