/**
 * What a benchmark section is. A section measures one area (crypto, handshake, delivery, ...)
 * and records flat numeric results under its own key prefix: `crypto.ours_msgs_per_s_1k`.
 *
 * Adding a section: write `bench/sections/<id>.ts` exporting `defineSection({...})`, then add it
 * to the list in `bench/sections/index.ts`. The runner does the rest (progress bar, `--only`,
 * merging into bench/results/latest.json, the table in docs/benchmarks.md).
 */

/** A goal a metric is compared against in docs/benchmarks.md (never asserted in a test). */
export interface Goal {
  readonly op: '>=' | '>' | '<=' | '<';
  readonly value: number;
}

/** A documented result key of a section; its row in the docs table. */
export interface Metric {
  /** The key without the section prefix: `ours_msgs_per_s_1k`. */
  readonly key: string;
  /** What was measured, in a few words: "ours, one-way burst, 1 KiB". */
  readonly label: string;
  /** Unit shown after the value: "msgs/s", "ms", "µs", "x". */
  readonly unit: string;
  readonly goal?: Goal;
  /** Digits after the decimal point in the docs (default: 0 for values >= 100, else 2). */
  readonly digits?: number;
}

export interface SectionContext {
  /** `--quick`: fewer repetitions and shorter runs; the whole quick run stays under 3 minutes. */
  readonly quick: boolean;
  /** Records one result; `key` is without the section prefix and must be a finite number. */
  record(key: string, value: number): void;
  /** Advances the progress bar by one of the steps `plan()` announced, naming the next task. */
  step(task: string): void;
  /** Sets the task shown next to the progress bar without advancing it. */
  status(task: string): void;
}

export interface Section {
  /** The key prefix and the `--only=` name: lower case, no dots. */
  readonly id: string;
  /** The heading in docs/benchmarks.md. */
  readonly title: string;
  /** A paragraph for the docs: what is measured, how, and against which peer or ceiling. */
  readonly description: string;
  /** npm packages whose versions belong in the results' meta block (peers, servers). */
  readonly packages?: readonly string[];
  readonly metrics: readonly Metric[];
  /**
   * Seconds this section may take with `--quick` (the whole quick run stays under 3 minutes);
   * the runner warns when a quick run goes over.
   */
  readonly quickBudgetSeconds: number;
  /** How many times `run` will call `ctx.step` (sizes the progress bar). */
  plan(quick: boolean): number;
  run(ctx: SectionContext): Promise<void>;
  /**
   * Extra markdown under the section's table (a plot, a note), given this section's results
   * keyed without prefix. Optional.
   */
  docs?(values: Readonly<Record<string, number>>): string;
}

export function defineSection(section: Section): Section {
  if (!/^[a-z][a-z0-9_]*$/.test(section.id)) {
    throw new Error(`bench: section id "${section.id}" must be lower case letters, digits and _`);
  }
  return section;
}

/** True when `value` meets `goal`. */
export function meets(value: number, goal: Goal): boolean {
  switch (goal.op) {
    case '>=':
      return value >= goal.value;
    case '>':
      return value > goal.value;
    case '<=':
      return value <= goal.value;
    case '<':
      return value < goal.value;
  }
}
