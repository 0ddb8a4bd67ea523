/**
 * The reliability suite's report: every case records its figures here, and
 * `reliability-reporter.mjs` (a jest reporter) turns this run's rows into docs/reliability.md.
 *
 * A row is one JSON line appended to `test-artifacts/reliability/<suite>.jsonl` (`suite` defaults
 * to the spec file's name without `.spec.ts`). The row carries the spec path and the full name of
 * the jest test that recorded it, so the reporter shows FAIL when an assertion after `recordCase`
 * fails, whatever `outcome` said. Figures are counts, sizes and codes: never a key, nonce,
 * plaintext or payload byte.
 *
 * @example
 * it('drops every flipped bit', async () => {
 *   const rejected = ...;
 *   recordCase({ id: 'T1', title: 'Every bit of an envelope flipped', figures: { variants: 4096, rejected },
 *                outcome: rejected === 4096 ? 'pass' : 'fail' });
 *   expect(rejected).toBe(4096);
 * });
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from '@jest/globals';
import { RELIABILITY_MODE } from './parameters.js';

/** One row of docs/reliability.md. */
export interface ReliabilityCase {
  /** Stable, short and unique across the suite: `C1`, `T4`, `A2`, `H3`, `F1`, `L1`... */
  readonly id: string;
  /** What the case proves, in one line. */
  readonly title: string;
  /** What was measured: counts, sizes, error codes, durations. Never secret bytes. */
  readonly figures: Record<string, number | string>;
  /** The case's own verdict; the jest result of the recording test can still turn it into a FAIL. */
  readonly outcome: 'pass' | 'fail';
  /** File name under test-artifacts/reliability/ (without `.jsonl`). @default the spec file's name */
  readonly suite?: string;
}

/** The repository root (this file is test/reliability/report.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the rows go; the reporter reads every `*.jsonl` here. */
export const RELIABILITY_ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'reliability');

/** The JSON line the reporter reads back (`reliability-reporter.mjs` parses exactly this shape). */
export interface ReliabilityRow {
  readonly id: string;
  readonly title: string;
  readonly figures: Record<string, number | string>;
  readonly outcome: 'pass' | 'fail';
  readonly suite: string;
  /** Absolute path of the spec file that recorded the row (matched against jest's results). */
  readonly testPath: string;
  /** jest's full name of the recording test ('describe title' + ' ' + 'test title'). */
  readonly testName: string;
  /** 'ci' or 'soak' (USM_SOAK=1). */
  readonly mode: string;
  /** Milliseconds since the epoch: the reporter keeps only rows written during its run. */
  readonly at: number;
}

function currentTest(): { testPath: string; testName: string } {
  const state = expect.getState();
  return { testPath: state.testPath ?? '', testName: state.currentTestName ?? '' };
}

/** Appends one case to the report. Call it from inside the `it` that proves the case. */
export function recordCase(record: ReliabilityCase): void {
  const { testPath, testName } = currentTest();
  const suite = record.suite ?? (basename(testPath).replace(/\.spec\.ts$/, '') || 'reliability');
  for (const [name, value] of Object.entries(record.figures)) {
    if (typeof value !== 'number' && typeof value !== 'string') {
      throw new TypeError(`recordCase(${record.id}): figure '${name}' must be a number or a string`);
    }
  }
  const row: ReliabilityRow = {
    id: record.id,
    title: record.title,
    figures: record.figures,
    outcome: record.outcome,
    suite,
    testPath,
    testName,
    mode: RELIABILITY_MODE,
    at: Date.now(),
  };
  mkdirSync(RELIABILITY_ARTIFACTS, { recursive: true });
  // One short line per write with O_APPEND: lines from parallel jest workers do not interleave.
  appendFileSync(join(RELIABILITY_ARTIFACTS, `${suite}.jsonl`), `${JSON.stringify(row)}\n`);
}

/** Records a protocol parameter the suite asserted, for the report's parameter table. */
export function recordParameter(name: string, value: number | string, source: string): void {
  const { testPath, testName } = currentTest();
  mkdirSync(RELIABILITY_ARTIFACTS, { recursive: true });
  const row = { name, value, source, testPath, testName, mode: RELIABILITY_MODE, at: Date.now() };
  appendFileSync(join(RELIABILITY_ARTIFACTS, 'parameters.params.jsonl'), `${JSON.stringify(row)}\n`);
}
