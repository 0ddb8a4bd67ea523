/**
 * Timing helpers shared by the sections. These machines are shared and noisy: every figure is
 * the median of several repetitions, peers are measured in the same run (interleaved with ours
 * where it matters), and only the ratios are compared against goals.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// `npm run bench` runs plain `node`; this is the documented way to reach gc() without --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Collects garbage now, so a measurement does not pay for the garbage of the one before it.
 * Call it before each timed task.
 */
export function settle(): void {
  gc();
}

export const now = (): number => performance.now();

export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new Error('bench: median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds `fn` took. */
export async function elapsedMs(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

/**
 * Operations per second of a synchronous `op`, run in growing batches until `minMs` passed
 * (the clock is read between batches only, so its cost stays out of the figure).
 */
export function rateSync(op: () => void, minMs: number): number {
  let done = 0;
  let batch = 8;
  const start = now();
  for (;;) {
    for (let i = 0; i < batch; i++) op();
    done += batch;
    const elapsed = now() - start;
    if (elapsed >= minMs) return (done * 1000) / elapsed;
    if (elapsed < minMs / 4) batch *= 2;
  }
}

/** Same as `rateSync` for an asynchronous `op`, each call awaited before the next. */
export async function rateAsync(op: () => Promise<unknown>, minMs: number): Promise<number> {
  let done = 0;
  let batch = 8;
  const start = now();
  for (;;) {
    for (let i = 0; i < batch; i++) await op();
    done += batch;
    const elapsed = now() - start;
    if (elapsed >= minMs) return (done * 1000) / elapsed;
    if (elapsed < minMs / 4) batch *= 2;
  }
}
