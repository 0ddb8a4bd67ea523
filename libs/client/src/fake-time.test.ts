/**
 * Test kit of the client's unit specs (the `.test.ts` name keeps it out of the build and out of
 * jest's `*.spec.ts` match): a clock and scheduler on fake time, and a Runtime around them that
 * collects what the component reports.
 */
import type { Clock } from '@usm/protocol';
import type { Runtime, Scheduler, TimerHandle } from './runtime.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

/** Time that moves only when told: `advance(ms)` fires the timers due, in order. */
export class FakeTime implements Clock, Scheduler {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();

  constructor(start = 1_800_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(run: () => void, ms: number): TimerHandle {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#now + Math.max(0, ms), seq, run });
    return seq;
  }

  clearTimeout(timer: TimerHandle): void {
    if (typeof timer === 'number') this.#timers.delete(timer);
  }

  /** Timers set and not fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** How long until each pending timer fires, soonest first. */
  delays(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time on by `ms`, firing every timer due on the way (and settling promises after each). */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let next: Timer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.seq);
      this.#now = next.at;
      next.run();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise chains (and store writes) run to their end. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

export interface FakeRuntime extends Runtime {
  readonly time: FakeTime;
  /** What the component reported, in order. */
  readonly reported: unknown[];
  closed: boolean;
}

export function fakeRuntime(time = new FakeTime()): FakeRuntime {
  const rt: FakeRuntime = {
    time,
    clock: time,
    scheduler: time,
    reported: [],
    closed: false,
    report: (err) => {
      if (!rt.closed) rt.reported.push(err);
    },
    isClosed: () => rt.closed,
  };
  return rt;
}
