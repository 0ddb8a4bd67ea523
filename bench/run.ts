/**
 * `npm run bench [-- --quick] [-- --only=crypto,handshake]`: runs the benchmark sections of
 * sections/index.ts with a progress bar on stderr, merges their figures into
 * bench/results/latest.json and regenerates docs/benchmarks.md after each section.
 */
import { parseArgs } from 'node:util';
import { Progress } from './lib/progress.js';
import { formatGoal, formatNumber, saveDocs } from './lib/report.js';
import {
  RESULTS_FILE,
  currentCommit,
  loadAverage,
  loadResults,
  machineMeta,
  mergeSection,
  packageVersion,
  saveResults,
  type Results,
} from './lib/results.js';
import { meets, type Section, type SectionContext } from './lib/section.js';
import { sections } from './sections/index.js';
import { teardown } from './lib/teardown.js';

const USAGE = `usage: npm run bench [-- --quick] [-- --only=<section>[,<section>...]]
       npm run bench -- --docs   (regenerate docs/benchmarks.md from the results, measure nothing)
sections: ${sections.map((s) => s.id).join(', ')}`;

function parse(): { quick: boolean; docsOnly: boolean; selected: readonly Section[] } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
      docs: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const docsOnly = values.docs;
  if (values.only === undefined) return { quick: values.quick, docsOnly, selected: sections };
  const wanted = values.only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((id) => !sections.some((s) => s.id === id));
  if (unknown.length > 0 || wanted.length === 0) {
    throw new Error(`bench: unknown section "${unknown.join(', ')}" in --only\n${USAGE}`);
  }
  return { quick: values.quick, docsOnly, selected: sections.filter((s) => wanted.includes(s.id)) };
}

function commandLine(): string {
  const args = process.argv.slice(2);
  if (process.env.npm_lifecycle_event === 'bench')
    return ['npm run bench', ...(args.length ? ['--', ...args] : [])].join(' ');
  return ['node --import ./bench/register.mjs bench/run.ts', ...args].join(' ');
}

async function runSection(
  section: Section,
  quick: boolean,
  progress: Progress,
): Promise<Map<string, number>> {
  const planned = section.plan(quick);
  const recorded = new Map<string, number>();
  let started = 0;
  const ctx: SectionContext = {
    quick,
    record(key, value) {
      if (!/^[a-z0-9_]+$/.test(key))
        throw new Error(`bench: result key "${key}" must be lower case, digits, _`);
      if (!Number.isFinite(value)) throw new Error(`bench: ${section.id}.${key} is not a finite number`);
      recorded.set(key, value);
    },
    step(task) {
      progress.advance(started > 0 && started <= planned ? 1 : 0, `${section.id}: ${task}`);
      started++;
    },
    status(task) {
      progress.status(`${section.id}: ${task}`);
    },
  };
  try {
    await section.run(ctx);
  } finally {
    // Whatever the section announced and did not step through, so the bar stays honest.
    progress.advance(Math.max(0, planned - Math.max(0, started - 1)), `${section.id}: done`);
  }
  return recorded;
}

function summary(results: Results, ran: readonly Section[]): string {
  const lines: string[] = [];
  for (const section of ran) {
    lines.push(`${section.title}`);
    for (const metric of section.metrics) {
      const value = results.values[`${section.id}.${metric.key}`];
      if (value === undefined) continue;
      const goal = metric.goal
        ? `  (goal ${formatGoal(metric.goal, metric.unit)}: ${meets(value, metric.goal) ? 'met' : 'MISSED'})`
        : '';
      lines.push(
        `  ${section.id}.${metric.key} = ${formatNumber(value, metric.digits)} ${metric.unit}${goal}`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { quick, docsOnly, selected } = parse();
  if (docsOnly) {
    const saved = loadResults();
    if (!saved) throw new Error(`bench: no ${RESULTS_FILE} yet: run the benchmark first`);
    await saveDocs(saved, sections);
    console.log('wrote docs/benchmarks.md');
    return;
  }
  const command = commandLine();
  const meta = machineMeta(
    command,
    quick,
    selected.map((s) => s.id),
  );
  meta.packages = { tsx: packageVersion('tsx') };
  let results = loadResults();
  const progress = new Progress();
  progress.start(selected.reduce((n, s) => n + s.plan(quick), 0));
  const failed: string[] = [];
  const ran: Section[] = [];
  try {
    for (const section of selected) {
      const start = performance.now();
      const load = loadAverage();
      let fresh: Map<string, number>;
      try {
        fresh = await runSection(section, quick, progress);
      } catch (err) {
        failed.push(`${section.id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        continue;
      }
      const seconds = (performance.now() - start) / 1000;
      if (quick && seconds > section.quickBudgetSeconds) {
        console.warn(
          `\nbench: ${section.id} took ${Math.round(seconds)} s with --quick, over its budget of ` +
            `${section.quickBudgetSeconds} s: shorten its quick mode`,
        );
      }
      const packages = Object.fromEntries((section.packages ?? []).map((p) => [p, packageVersion(p)]));
      results = mergeSection(
        results,
        meta,
        section.id,
        fresh,
        {
          date: new Date().toISOString(),
          quick,
          command,
          seconds,
          loadAverage: load,
          commit: currentCommit(),
        },
        packages,
      );
      saveResults(results);
      await saveDocs(results, sections);
      ran.push(section);
    }
  } finally {
    progress.stop();
    // Relay nodes, peers and the shared PostgreSQL the sections started.
    await teardown();
  }
  if (results) console.log(`\n${summary(results, ran)}\n\nwrote ${RESULTS_FILE} and docs/benchmarks.md`);
  if (failed.length > 0) {
    console.error(`\nbench: ${failed.length} section(s) failed:\n${failed.join('\n')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
