/**
 * Exponential backoff with "full jitter": the n-th retry (n = 0, 1, ...) waits a uniformly random
 * time in [0, min(cap, base * factor^n)). Randomising the whole interval spreads the retries of
 * many clients that lost the relay at the same moment, so they do not reconnect in waves
 * (M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 * Used by the reconnect loop and by the outbox's retry schedule.
 */
import { ClientError, ClientErrorCode } from './errors.js';

export interface BackoffOptions {
  /** The ceiling of the first delay, in ms. @default 500 */
  baseMs?: number;
  /** How much the ceiling grows per attempt (>= 1). @default 2 */
  factor?: number;
  /** The largest ceiling, in ms (>= baseMs). @default 30000 */
  capMs?: number;
  /** A uniform random number in [0, 1). Injectable for tests. @default Math.random */
  random?: () => number;
}

/** The defaults of `BackoffOptions`, in one place. */
export const BACKOFF_DEFAULTS: Readonly<Required<BackoffOptions>> = Object.freeze({
  baseMs: 500,
  factor: 2,
  capMs: 30_000,
  random: Math.random,
});

function resolve(options: BackoffOptions): Required<BackoffOptions> {
  const o = { ...BACKOFF_DEFAULTS, ...options };
  const bad = (what: string) =>
    new ClientError(ClientErrorCode.InvalidArgument, `backoff: ${what}; pass a finite, positive number`);
  if (!Number.isFinite(o.baseMs) || o.baseMs <= 0) throw bad(`baseMs must be > 0, got ${o.baseMs}`);
  if (!Number.isFinite(o.factor) || o.factor < 1) throw bad(`factor must be >= 1, got ${o.factor}`);
  if (!Number.isFinite(o.capMs) || o.capMs < o.baseMs) throw bad(`capMs must be >= baseMs, got ${o.capMs}`);
  if (typeof o.random !== 'function') throw bad('random must be a function returning [0, 1)');
  return o;
}

/** The upper bound (exclusive) of the delay before retry number `attempt` (0-based), in ms. */
export function backoffCeiling(attempt: number, options: BackoffOptions = {}): number {
  const o = resolve(options);
  return ceilingOf(attempt, o);
}

function ceilingOf(attempt: number, o: Required<BackoffOptions>): number {
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new ClientError(
      ClientErrorCode.InvalidArgument,
      `backoff: attempt must be an integer >= 0, got ${attempt}`,
    );
  }
  // factor^attempt overflows to Infinity for large attempts; min() then yields the cap.
  return Math.min(o.capMs, o.baseMs * o.factor ** attempt);
}

/**
 * The delay before retry number `attempt` (0-based), in whole ms: uniform in
 * [0, backoffCeiling(attempt)).
 *
 * @example
 * const wait = backoffDelay(attempts); // 0 <= wait < min(30000, 500 * 2 ** attempts)
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const o = resolve(options);
  const ceiling = ceilingOf(attempt, o);
  const r = o.random();
  if (!(r >= 0 && r < 1)) {
    throw new ClientError(
      ClientErrorCode.InvalidArgument,
      `backoff: the random source must return a number in [0, 1), got ${r}`,
    );
  }
  return Math.floor(r * ceiling);
}

/**
 * A backoff schedule with its attempt counter: `next()` gives the next delay and counts the
 * attempt, `reset()` starts over (after a successful connection).
 *
 * @example
 * const backoff = new Backoff({ capMs: 10_000 });
 * socket.on('disconnect', () => setTimeout(connect, backoff.next()));
 * socket.on('connect', () => backoff.reset());
 */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#options = resolve(options);
  }

  /** How many delays were handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next try, in ms; counts one attempt. */
  next(): number {
    const delay = backoffDelay(this.#attempt, this.#options);
    this.#attempt++;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
