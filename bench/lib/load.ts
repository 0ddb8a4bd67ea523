/**
 * Load generators over a Fleet.
 *
 * - `openLoop`: a fixed offered rate, whatever the system does (sends never wait for replies or
 *   deliveries), so a slow relay shows up as growing latency, not as a politely slower client.
 *   A 1 ms timer sends every message whose slot has come; latency runs from the `send` call to
 *   the recipient's `mail` callback.
 * - `closedLoop`: each pair keeps `window` messages in flight (sent, not yet received) and sends
 *   the next on each delivery: the highest rate the path sustains at that concurrency.
 */
import type { CpuProbe } from './cpu.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Fleet } from './fleet.js';
import { now } from './measure.js';

/** The q-quantile (0..1) of `sorted` (ascending), nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export interface OpenLoopResult {
  /** msgs/s asked for. */
  readonly offered: number;
  /** msgs/s actually emitted (the generator's own ceiling shows here). */
  readonly sentRate: number;
  /** msgs/s received over the sending window plus the drain. */
  readonly deliveredRate: number;
  readonly sent: number;
  readonly delivered: number;
  readonly failures: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Fewer than 99 % delivered within the drain, or p99 beyond `saturatedP99Ms`. */
  readonly saturated: boolean;
}

export interface OpenLoopOptions {
  readonly rate: number;
  readonly durationMs: number;
  /** Sent first at the same rate and not counted (JIT, pools, caches). @default 500 */
  readonly warmupMs?: number;
  /** How long to wait for stragglers after the last send. @default 3000 */
  readonly drainMs?: number;
  /** @default 250 */
  readonly saturatedP99Ms?: number;
  /** Stops sending early (before `durationMs`) once this returns true. */
  readonly until?: () => boolean;
  /** Called once per second with the progress, for the status line. */
  readonly onTick?: (sent: number, delivered: number) => void;
}

async function paced(
  fleet: Fleet,
  rate: number,
  ms: number,
  onSend: () => void,
  until: () => boolean = () => false,
): Promise<number> {
  const start = now();
  let sent = 0;
  let pair = 0;
  for (;;) {
    const elapsed = now() - start;
    if (elapsed >= ms || until()) break;
    const due = Math.floor((elapsed * rate) / 1000);
    while (sent < due) {
      fleet.send(pair);
      pair = (pair + 1) % fleet.pairs;
      sent++;
      onSend();
    }
    await sleep(1);
  }
  return sent;
}

export async function openLoop(fleet: Fleet, options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { rate, durationMs, warmupMs = 500, drainMs = 3_000, saturatedP99Ms = 250 } = options;
  const latencies: number[] = [];
  let counting = false;
  let delivered = 0;
  fleet.onDelivered = (_pair, ms) => {
    if (!counting) return;
    latencies.push(ms);
    delivered++;
  };
  if (warmupMs > 0) await paced(fleet, rate, warmupMs, () => undefined);
  // Warm-up messages still in flight are not counted.
  await sleep(50);
  fleet.forget();
  const failuresBefore = fleet.failures;
  counting = true;
  const start = now();
  let lastTick = start;
  const sent = await paced(
    fleet,
    rate,
    durationMs,
    () => {
      const t = now();
      if (options.onTick && t - lastTick > 1000) {
        lastTick = t;
        options.onTick(latencies.length, delivered);
      }
    },
    options.until,
  );
  const sentAt = now();
  const sendSeconds = (sentAt - start) / 1000;
  while (fleet.inFlight > 0 && now() - sentAt < drainMs) await sleep(5);
  const lastDelivery = now();
  counting = false;
  fleet.onDelivered = undefined;
  fleet.forget();
  latencies.sort((a, b) => a - b);
  const p99 = quantile(latencies, 0.99);
  return {
    offered: rate,
    sentRate: sent / sendSeconds,
    deliveredRate: delivered / ((lastDelivery - start) / 1000),
    sent,
    delivered,
    failures: fleet.failures - failuresBefore,
    p50: quantile(latencies, 0.5),
    p99,
    p999: quantile(latencies, 0.999),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    saturated: delivered < sent * 0.99 || !(p99 <= saturatedP99Ms) || sent < rate * sendSeconds * 0.95,
  };
}

export interface ClosedLoopResult {
  /** Messages delivered per second over the measured window. */
  readonly rate: number;
  readonly failures: number;
  readonly p50: number;
  readonly p99: number;
  /** With `cpu`: CPU microseconds per delivered message in the measured window, by counter. */
  readonly cpuUsPerMsg?: Record<string, number>;
}

/**
 * Each pair keeps `window` messages in flight for `warmupMs + durationMs`; the rate counts
 * deliveries during the last `durationMs` only.
 */
export async function closedLoop(
  fleet: Fleet,
  options: { window: number; durationMs: number; warmupMs?: number; cpu?: CpuProbe },
): Promise<ClosedLoopResult> {
  const { window, durationMs, warmupMs = 1_000 } = options;
  let measuring = false;
  let running = true;
  let delivered = 0;
  const latencies: number[] = [];
  fleet.onDelivered = (pair, ms) => {
    if (measuring) {
      delivered++;
      latencies.push(ms);
    }
    if (running) fleet.send(pair);
  };
  const failuresBefore = fleet.failures;
  for (let w = 0; w < window; w++) for (let p = 0; p < fleet.pairs; p++) fleet.send(p);
  await sleep(warmupMs);
  measuring = true;
  const cpuBefore = options.cpu?.();
  const start = now();
  await sleep(durationMs);
  measuring = false;
  const seconds = (now() - start) / 1000;
  const cpuAfter = options.cpu?.();
  running = false;
  const drainStart = now();
  while (fleet.inFlight > 0 && now() - drainStart < 5_000) await sleep(10);
  fleet.onDelivered = undefined;
  fleet.forget();
  latencies.sort((a, b) => a - b);
  return {
    rate: delivered / seconds,
    failures: fleet.failures - failuresBefore,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    ...(cpuBefore && cpuAfter && delivered > 0
      ? {
          cpuUsPerMsg: Object.fromEntries(
            Object.keys(cpuAfter).map((k) => [k, ((cpuAfter[k]! - (cpuBefore[k] ?? 0)) * 1e6) / delivered]),
          ),
        }
      : {}),
  };
}
