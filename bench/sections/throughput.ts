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
import { type CpuProbe, ownCpuSeconds, postgresCpuSeconds, processCpuSeconds } from '../lib/cpu.js';
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
  cpu?: CpuProbe,
): Promise<ClosedLoopResult & { window: number }> {
  let best: (ClosedLoopResult & { window: number }) | undefined;
  for (const window of WINDOWS) {
    ctx.step(`${label}, ${PAIRS} pairs x ${window} in flight`);
    settle();
    const r = await closedLoop(fleet, {
      window,
      durationMs: durationMs(ctx.quick),
      warmupMs: ctx.quick ? 500 : 1_000,
      ...(cpu ? { cpu } : {}),
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
    const b = await bestRate(ctx, 'bare socket.io', fleet, () => ({
      clients: ownCpuSeconds(),
      forwarder: processCpuSeconds(bare.child.pid),
    }));
    fleet.close();
    await bare.stop();
    fleet = await relayFleet([node.url], keyPair.publicKey, PAIRS);
    const r = await bestRate(ctx, 'relay', fleet, () => ({
      clients: ownCpuSeconds(),
      relay: processCpuSeconds(node.child.pid),
      postgres: postgresCpuSeconds(),
    }));
    ctx.record('relay_msgs_per_s', r.rate);
    ctx.record('bare_socketio_msgs_per_s', b.rate);
    ctx.record('ratio', r.rate / b.rate);
    ctx.record('relay_window', r.window);
    ctx.record('relay_p99_ms', r.p99);
    ctx.record('bare_socketio_p99_ms', b.p99);
    ctx.record('relay_send_failures', r.failures);
    // Where one message's CPU goes (the two cores are shared by all of them).
    const perMsg = (x: ClosedLoopResult) => Object.values(x.cpuUsPerMsg ?? {}).reduce((a, v) => a + v, 0);
    for (const [k, v] of Object.entries(r.cpuUsPerMsg ?? {})) ctx.record(`relay_cpu_us_per_msg_${k}`, v);
    ctx.record('relay_cpu_us_per_msg', perMsg(r));
    for (const [k, v] of Object.entries(b.cpuUsPerMsg ?? {})) ctx.record(`bare_cpu_us_per_msg_${k}`, v);
    ctx.record('bare_cpu_us_per_msg', perMsg(b));
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
    { key: 'relay_cpu_us_per_msg', label: 'relay path: CPU per message, all processes', unit: 'µs' },
    { key: 'relay_cpu_us_per_msg_clients', label: '... of which the clients', unit: 'µs' },
    { key: 'relay_cpu_us_per_msg_relay', label: '... of which the relay node', unit: 'µs' },
    { key: 'relay_cpu_us_per_msg_postgres', label: '... of which PostgreSQL', unit: 'µs' },
    { key: 'bare_cpu_us_per_msg', label: 'bare path: CPU per message, all processes', unit: 'µs' },
    { key: 'bare_cpu_us_per_msg_clients', label: '... of which the clients', unit: 'µs' },
    { key: 'bare_cpu_us_per_msg_forwarder', label: '... of which the forwarder', unit: 'µs' },
  ],
  plan: () => 1 + 2 * WINDOWS.length,
  run,
  docs: () =>
    'Fixes measured here (one node): the relay started at 264 msgs/s; pushing to local sockets without ' +
    'waiting for the PostgreSQL adapter gave 372, group commits for concurrent sends about 2,500, one group ' +
    'commit at a time (no lock waits between groups) about 5,100, a group commit in one round trip with ' +
    'per-mailbox counts kept by triggers about 7,500 (PostgreSQL CPU per message from 137 to 77 µs: the ' +
    "quota used to count the mailbox's index entries, dead ones included, and the store's cached plan " +
    "scanned the whole table), and corking each websocket's TCP socket for an event-loop turn about 8,200 " +
    '(relay CPU per message from 107 to 86 µs: ws wrote every frame with its own system call, and writev ' +
    "was a third of the relay's CPU profile). Why the goal is still missed here: the CPU rows above. " +
    'Clients, relay and PostgreSQL share two cores, so the closed loop runs at about (2 cores / CPU per ' +
    'message); the bare path spends about 79 µs per message, the durable path nearly three times that: ' +
    'PostgreSQL (an INSERT in a group commit, a DELETE per recipient ack, WAL, three indexes) costs about as ' +
    'much as the whole bare path, and so does the relay node (socket.io framing and parsing, GC, ' +
    "Nest's per-event context). Next steps, not done: one websocket frame per socket.io packet (the " +
    'default parser sends a packet header and each envelope as separate frames; @socket.io/msgpack-parser ' +
    'would send one, on both ends, a wire-format change), envelopes bound as one binary parameter instead ' +
    'of a hex-escaped bytea array, and a run where PostgreSQL has its own cores. The bare ' +
    "forwarder's figure swings between about 8,000 and 24,000 msgs/s from run to run on this shared " +
    'machine (22,000 to 24,000 when it is quiet), and the ratio with it.',
});
