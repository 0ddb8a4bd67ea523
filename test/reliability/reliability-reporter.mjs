/**
 * A jest reporter that writes docs/reliability.md from the reliability suite's rows.
 *
 * Specs call `recordCase()` (test/reliability/report.ts), which appends JSON lines to
 * test-artifacts/reliability/*.jsonl. At the end of a jest run, if any row was written during
 * this run by a spec of this run, the reporter:
 *  - marks each row PASS only if the case said 'pass' AND the jest test that recorded it passed
 *    (an assertion failing after recordCase still shows FAIL);
 *  - adds a FAIL row for every failed test of a test/reliability spec that recorded nothing;
 *  - merges the rows into test-artifacts/reliability/report-state.json (the latest row per case
 *    id wins, so running one spec again updates its rows and keeps the others, each row saying
 *    which run produced it);
 *  - regenerates docs/reliability.md: runs (date, machine, command, sizes), parameters, cases.
 * A run without reliability rows leaves the document alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';

const STATE_VERSION = 1;

function readJsonLines(file) {
  const rows = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      rows.push(JSON.parse(line));
    } catch {
      // A line cut short by a killed worker: skip it, the test that wrote it did not finish either.
    }
  }
  return rows;
}

function machine() {
  const cpus = os.cpus();
  const model = (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  const gib = (os.totalmem() / 1024 ** 3).toFixed(1);
  return `${cpus.length} × ${model}, ${gib} GiB RAM, ${os.type()} ${os.release()} ${os.arch()}, Node ${process.version}${process.env.CI ? ', CI' : ''}`;
}

function formatValue(value) {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? value.toLocaleString('en-US') : String(Math.round(value * 100) / 100);
  }
  return String(value);
}

function cell(text) {
  return String(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function compareIds(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

export default class ReliabilityReporter {
  constructor(globalConfig, reporterOptions = {}) {
    this.rootDir = globalConfig.rootDir;
    this.artifacts = reporterOptions.artifacts ?? join(this.rootDir, 'test-artifacts', 'reliability');
    this.docPath = reporterOptions.output ?? join(this.rootDir, 'docs', 'reliability.md');
    this.startedAt = Date.now();
  }

  onRunStart() {
    this.startedAt = Math.min(this.startedAt, Date.now());
  }

  command() {
    const argv = process.argv
      .slice(1)
      .map((arg) => (arg.startsWith(this.rootDir) ? relative(this.rootDir, arg) : arg));
    const node = ['node', ...process.execArgv, ...argv].join(' ');
    const script = process.env.npm_lifecycle_event;
    const soak = process.env.USM_SOAK === '1' ? 'USM_SOAK=1 ' : '';
    return script ? `npm run ${script} (${soak}${node})` : `${soak}${node}`;
  }

  onRunComplete(_testContexts, results) {
    try {
      this.write(results);
    } catch (error) {
      // The report must never hide the test results: say what failed and go on.
      console.error(`reliability-reporter: docs/reliability.md not written: ${error?.message ?? error}`);
    }
  }

  write(results) {
    if (!existsSync(this.artifacts)) return;
    const status = new Map(); // testPath -> (fullName -> status)
    const reliabilityFiles = [];
    for (const file of results.testResults) {
      const byName = new Map();
      for (const test of file.testResults) byName.set(test.fullName, test.status);
      status.set(file.testFilePath, byName);
      if (relative(this.rootDir, file.testFilePath).startsWith(join('test', 'reliability')))
        reliabilityFiles.push(file);
    }
    const fromThisRun = (row) =>
      typeof row.at === 'number' && row.at >= this.startedAt && status.has(row.testPath);

    const rows = [];
    const params = [];
    for (const name of readdirSync(this.artifacts)) {
      if (!name.endsWith('.jsonl')) continue;
      const lines = readJsonLines(join(this.artifacts, name)).filter(fromThisRun);
      if (name.endsWith('.params.jsonl')) params.push(...lines);
      else rows.push(...lines);
    }
    if (rows.length === 0 && params.length === 0) return;

    const mode = rows[0]?.mode ?? params[0]?.mode ?? 'ci';
    const spans = reliabilityFiles.map((f) => f.perfStats).filter((p) => p && p.end > p.start);
    const run = {
      date: new Date(this.startedAt).toISOString(),
      machine: machine(),
      command: this.command(),
      mode,
      reliabilityWallMs: spans.length
        ? Math.max(...spans.map((p) => p.end)) - Math.min(...spans.map((p) => p.start))
        : 0,
      reliabilityFileMs: spans.reduce((sum, p) => sum + (p.end - p.start), 0),
      specs: reliabilityFiles.length,
    };

    const statePath = join(this.artifacts, 'report-state.json');
    let state = { version: STATE_VERSION, runs: [], cases: {}, parameters: {} };
    if (existsSync(statePath)) {
      try {
        const previous = JSON.parse(readFileSync(statePath, 'utf8'));
        if (previous.version === STATE_VERSION) state = previous;
      } catch {
        // A damaged state file: start again from this run.
      }
    }
    state.runs.push(run);
    const runIndex = state.runs.length;

    const recorded = new Set();
    for (const row of rows) {
      const jest = status.get(row.testPath)?.get(row.testName) ?? 'unknown';
      recorded.add(`${row.testPath}\u0000${row.testName}`);
      const pass = row.outcome === 'pass' && jest === 'passed';
      const note = row.outcome === 'pass' && jest !== 'passed' ? `jest: ${jest}` : '';
      state.cases[row.id] = {
        id: row.id,
        title: row.title,
        figures: row.figures,
        result: pass ? 'PASS' : 'FAIL',
        note,
        spec: relative(this.rootDir, row.testPath),
        testName: row.testName,
        run: runIndex,
      };
    }
    // A case whose test ran again without recording it (it failed before recordCase): its old row
    // must not keep saying PASS. Tests skipped in this run (-t) keep their rows.
    const recordedIds = new Set(rows.map((r) => r.id));
    for (const [key, c] of Object.entries(state.cases)) {
      const ran = c.testName && status.get(join(this.rootDir, c.spec))?.get(c.testName);
      if (c.id !== '–' && !recordedIds.has(c.id) && (ran === 'passed' || ran === 'failed')) {
        state.cases[key] = {
          ...c,
          result: 'FAIL',
          note: 'not recorded by the latest run of its test',
          run: runIndex,
        };
      }
    }
    for (const file of reliabilityFiles) {
      for (const test of file.testResults) {
        if (test.status !== 'failed' || recorded.has(`${file.testFilePath}\u0000${test.fullName}`)) continue;
        const id = `(${relative(this.rootDir, file.testFilePath)}) ${test.fullName}`;
        state.cases[id] = {
          id: '–',
          title: test.fullName,
          figures: {},
          result: 'FAIL',
          note: 'failed before recording its figures',
          spec: relative(this.rootDir, file.testFilePath),
          run: runIndex,
        };
      }
      // A failing test that recorded nothing earlier and passes now: drop its stale FAIL row.
      for (const test of file.testResults) {
        if (test.status === 'passed')
          delete state.cases[`(${relative(this.rootDir, file.testFilePath)}) ${test.fullName}`];
      }
    }
    for (const p of params) {
      state.parameters[p.name] = { name: p.name, value: p.value, source: p.source, run: runIndex };
    }
    // Keep only the runs that still own a row or a parameter.
    const used = new Set(
      [...Object.values(state.cases), ...Object.values(state.parameters)].map((c) => c.run),
    );
    mkdirSync(this.artifacts, { recursive: true });
    writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`);
    writeFileSync(this.docPath, this.render(state, used));
  }

  render(state, used) {
    const cases = Object.values(state.cases).sort(
      (a, b) => compareIds(a.id, b.id) || a.title.localeCompare(b.title),
    );
    const params = Object.values(state.parameters).sort((a, b) => a.name.localeCompare(b.name));
    const failed = cases.filter((c) => c.result !== 'PASS').length;
    const out = [];
    out.push('# Reliability and security suite: results');
    out.push('');
    out.push(
      '<!-- Generated by test/reliability/reliability-reporter.mjs at the end of a jest run: do not edit by hand. -->',
    );
    out.push('');
    out.push(
      'The suite lives in `test/reliability/`. `npm test` runs it with the CI sizes, `npm run test:soak` ' +
        '(USM_SOAK=1) with the soak sizes; both sets are in `test/reliability/parameters.ts`. A case is PASS ' +
        'only if it said so and the jest test that recorded it passed.',
    );
    out.push('');
    out.push(`**${cases.length - failed} of ${cases.length} cases pass.**`);
    out.push('');
    out.push('## Runs');
    out.push('');
    out.push(
      '| Run | Date (UTC) | Sizes | Machine | Command | Reliability specs | Wall time of those specs |',
    );
    out.push('| --- | --- | --- | --- | --- | --- | --- |');
    state.runs.forEach((run, i) => {
      if (!used.has(i + 1)) return;
      out.push(
        `| ${i + 1} | ${run.date.replace('T', ' ').replace(/\.\d+Z$/, '')} | ${run.mode} | ${cell(run.machine)} | \`${cell(run.command)}\` | ${run.specs} | ${formatDuration(run.reliabilityWallMs)} (sum of files ${formatDuration(run.reliabilityFileMs)}) |`,
      );
    });
    out.push('');
    if (params.length > 0) {
      out.push('## Parameters');
      out.push('');
      out.push('Each value is read from the code (or the database) by a test, not retyped.');
      out.push('');
      out.push('| Parameter | Value | Where | Run |');
      out.push('| --- | --- | --- | --- |');
      for (const p of params)
        out.push(`| ${cell(p.name)} | ${cell(formatValue(p.value))} | ${cell(p.source)} | ${p.run} |`);
      out.push('');
    }
    out.push('## Cases');
    out.push('');
    out.push('| Id | Case | Figures | Result | Spec | Run |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    for (const c of cases) {
      const figures = Object.entries(c.figures)
        .map(([k, v]) => `${k}: ${formatValue(v)}`)
        .join('; ');
      const result = c.note ? `${c.result} (${c.note})` : c.result;
      out.push(
        `| ${cell(c.id)} | ${cell(c.title)} | ${cell(figures)} | **${result}** | ${cell(c.spec)} | ${c.run} |`,
      );
    }
    out.push('');
    return out.join('\n');
  }
}
