/**
 * The progress bar on stderr (stdout stays for the summary). Sections announce their steps in
 * `plan()`; the bar spans every selected section. Off a terminal it prints a line every few
 * seconds instead of redrawing.
 */
import cliProgress from 'cli-progress';

export class Progress {
  readonly #bar = new cliProgress.SingleBar({
    format:
      'bench [{bar}] {percentage}% | {value}/{total} | {duration_formatted}, ETA {eta_formatted} | {task}',
    barsize: 30,
    etaBuffer: 20,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    stream: process.stderr,
  });
  #done = 0;

  start(total: number): void {
    this.#bar.start(total, 0, { task: 'starting' });
  }

  /** Marks `count` steps done and shows `task` as the current one. */
  advance(count: number, task: string): void {
    this.#done += count;
    this.#bar.update(this.#done, { task });
  }

  /** Shows `task` without moving the bar. */
  status(task: string): void {
    this.#bar.update(this.#done, { task });
  }

  stop(): void {
    this.#bar.stop();
  }
}
