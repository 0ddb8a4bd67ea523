/**
 * Throughput: the highest sustained end-to-end rate through the relay with its durable store
 * (store committed before the send is acked, pushed to the recipient, acked and deleted),
 * against the bare socket.io forwarder (bench/peers/bare-socketio.mjs: A -> server -> B, no
 * storage, no crypto) in the same run, the same clients and the same envelopes. Closed loop:
 * each pair keeps a window of messages in flight; the best of a few windows counts.
 */
import { startBareSocketIo } from '../lib/children.js';
import { bareFleet, type Fleet, relayFleet } from '../lib/fleet.js';
import { closedLoop, type ClosedLoopResult } from '../lib/load.js';
import { settle } from '../lib/measure.js';
import { freshDatabase } from '../lib/postgres.js';
import { formatNumber } from '../lib/report.js';
import { relayIdentity, startRelayNode } from '../lib/relay-node.js';
import { defineSection, type SectionContext } from '../lib/section.js';

export const PAIRS = 16;
export const WINDOWS = [4, 32];

export function durationMs(quick: boolean): number {
  return quick ? 2_000 : 6_000;
}

/** The best closed-loop rate over WINDOWS; reports progress. */
export async function bestRate(
  ctx: SectionContext,
  label: string,
  fleet: Fleet,
): Promise<ClosedLoopResult & { window: number }> {
  let best: (ClosedLoopResult & { window: number }) | undefined;
  for (const window of WINDOWS) {
    ctx.step(`${label}, ${PAIRS} pairs x ${window} in flight`);
    settle();
    const r = await closedLoop(fleet, {
      window,
      durationMs: durationMs(ctx.quick),
      warmupMs: ctx.quick ? 500 : 1_000,
    });
    ctx.status(`${label}: ${formatNumber(r.rate)} msgs/s at window ${window}`);
    if (!best || r.rate > best.rate) best = { ...r, window };
  }
  return best!;
}

async function run(ctx: SectionContext): Promise<void> {
  ctx.step('starting PostgreSQL, a relay node and the bare socket.io forwarder');
  const db = await freshDatabase('throughput');
  const node = await startRelayNode(db.url);
  const bare = await startBareSocketIo();
  const { keyPair } = await relayIdentity();
  let fleet: Fleet | undefined;
  try {
    fleet = await bareFleet(bare.url, PAIRS);
    const b = await bestRate(ctx, 'bare socket.io', fleet);
    fleet.close();
    await bare.stop();
    fleet = await relayFleet([node.url], keyPair.publicKey, PAIRS);
    const r = await bestRate(ctx, 'relay', fleet);
    ctx.record('relay_msgs_per_s', r.rate);
    ctx.record('bare_socketio_msgs_per_s', b.rate);
    ctx.record('ratio', r.rate / b.rate);
    ctx.record('relay_window', r.window);
    ctx.record('relay_p99_ms', r.p99);
    ctx.record('bare_socketio_p99_ms', b.p99);
    ctx.record('relay_send_failures', r.failures);
  } finally {
    fleet?.close();
    await Promise.all([node.stop(), bare.stop()]);
  }
}

export const throughput = defineSection({
  id: 'throughput',
  title: 'Throughput: durable relay against a bare socket.io forwarder',
  description:
    `Closed loop: ${PAIRS} sender -> recipient pairs each keep a window of messages in flight (sent, not yet ` +
    `received; windows ${WINDOWS.join(' and ')}, the best counts) and send the next on each delivery. The relay ` +
    '(one node of the built sample app) stores each envelope (1 KiB of ciphertext) in PostgreSQL before it acks ' +
    'the send, pushes it, and deletes it when the recipient acks. The ceiling is a bare socket.io forwarder ' +
    '(bench/peers/bare-socketio.mjs: no storage, no crypto, no authentication) driven by the same clients with ' +
    "the same envelopes in the same run. Clients, relay and PostgreSQL share the machine's cores.",
  packages: ['socket.io', 'socket.io-client'],
  quickBudgetSeconds: 30,
  metrics: [
    { key: 'relay_msgs_per_s', label: 'relay, durable store, end to end', unit: 'msgs/s' },
    { key: 'bare_socketio_msgs_per_s', label: 'bare socket.io forwarder', unit: 'msgs/s' },
    { key: 'ratio', label: 'relay / bare socket.io', unit: 'x', goal: { op: '>=', value: 0.5 } },
    { key: 'relay_window', label: 'relay: best window per pair', unit: '' },
    { key: 'relay_p99_ms', label: 'relay: p99 latency at that rate', unit: 'ms' },
    { key: 'bare_socketio_p99_ms', label: 'bare: p99 latency at its best rate', unit: 'ms' },
    { key: 'relay_send_failures', label: 'relay: sends not acked as stored', unit: '' },
  ],
  plan: () => 1 + 2 * WINDOWS.length,
  run,
  docs: () =>
    'Fixes measured here (bench --quick, one node): the relay started at 264 msgs/s; pushing to local ' +
    'sockets without waiting for the PostgreSQL adapter gave 372, group commits for concurrent sends about ' +
    '2,500, and one group commit at a time (no lock waits between groups) about 5,100. The bare ' +
    "forwarder's figure swings between about 8,000 and 24,000 msgs/s from run to run on this shared " +
    "machine, and the ratio with it. The relay child's CPU profile shows socket writes (writev), GC and " +
    'socket.io framing, no single hot function; per message the relay still pays an INSERT inside a group ' +
    'commit, a push, two replies and a DELETE per recipient ack, and PostgreSQL takes the same two cores.',
});
