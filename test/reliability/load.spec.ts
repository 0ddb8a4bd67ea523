/**
 * Reliability: load. Three relay nodes (the built sample app, each in its own child process) on
 * one PostgreSQL; MessengerClient parties in the test process, spread over the nodes, each
 * sending at a fixed rate to two peers. Asserts 0 lost, 0 duplicated, per-conversation order kept,
 * an empty mail table at the end, and each node's resident memory flat in the second half of the
 * run (sampled from /proc/<pid>/status). Sizes: parameters.ts (CI: 20 clients x 200 messages;
 * USM_SOAK=1: 100 x 1,000), 10 messages per second per client.
 *
 *  L1  the load run and its figures (throughput, memory per node at start, middle and end).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SIZES } from './parameters.js';
import { recordCase } from './report.js';
import {
  BUILD_TIMEOUT_MS,
  ControlledPostgres,
  RelayCluster,
  RssSampler,
  startClusterOnControlledPostgres,
} from './support/relay-cluster.js';
import {
  type Expected,
  type Party,
  addExpected,
  closeAll,
  connectAll,
  deliveryReport,
  errorCodes,
  openParty,
  range,
  settle,
  trace,
  unexpectedErrors,
  until,
} from './support/parties.js';

/**
 * The most a node's resident memory may grow over the second half of the sending phase, in MiB.
 * Rationale: once connections, sessions, pools and V8's heap have reached their working size (the
 * first half), a relay that keeps nothing per message stays flat; what remains is allocator and GC
 * noise (a few MiB here). 24 MiB lets that noise through and catches a leak of more than about
 * 36 KiB per message at the CI size (about 670 messages per node in the second half) and of more
 * than about 1.5 KiB per message at the soak size (about 16,700).
 */
const RSS_SECOND_HALF_GROWTH_BOUND_MIB = 24;
/** How often each node's RSS is read. */
const RSS_SAMPLE_MS = 250;

let pg: ControlledPostgres;
let cluster: RelayCluster;
const open: Party[] = [];

beforeAll(async () => {
  ({ pg, cluster } = await startClusterOnControlledPostgres(SIZES.faultNodes));
}, BUILD_TIMEOUT_MS + 120_000);

afterAll(async () => {
  await closeAll(open);
  await cluster?.stop();
  await pg?.destroy();
}, 60_000);

/** The median of the values of `samples` (per node) whose time lies in [from, to]. */
function medianRss(samples: RssSampler['samples'], node: number, from: number, to: number): number {
  const values = samples
    .filter((s) => s.at >= from && s.at <= to)
    .map((s) => s.kib[node]!)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  if (values.length === 0) return Number.NaN;
  return values[Math.floor(values.length / 2)]!;
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

describe('load: three relay nodes, clients at a fixed rate', () => {
  it('L1 N clients x M messages at 10 msg/s each over three nodes: 0 lost, 0 duplicated, order kept, relay memory flat in the second half', async () => {
    const CLIENTS = SIZES.loadClients;
    const PER_CLIENT = SIZES.loadMessagesPerClient;
    const RATE = SIZES.loadRatePerClient;
    const nodes = cluster.nodes;
    const parties = await Promise.all(
      range(CLIENTS, (i) =>
        openParty({
          name: `l${i}`,
          relayUrl: nodes[i % nodes.length]!.url,
          relayKeyHex: cluster.relayKeyHex,
        }),
      ),
    );
    open.push(...parties);
    await connectAll(parties, 120_000);
    // Client i writes to i+1 and i+2 in turn: two conversations per sender, M/2 messages each.
    const peerOf = (i: number, n: number) => parties[(i + 1 + (n % 2)) % CLIENTS]!;
    const expected: Expected = new Map();
    const sends: Promise<unknown>[] = [];
    const send = (n: number) =>
      parties.forEach((p, i) => {
        const to = peerOf(i, n);
        addExpected(expected, p, to, `${i}:${n}`);
        sends.push(p.client.send(to.client.address, `${i}:${n}`));
      });
    // Messages 0 and 1 set up both sessions of every sender (bundle claims) before the clock starts.
    send(0);
    send(1);
    await settle('the session set-up', sends);

    const sampler = new RssSampler(nodes);
    sampler.start(RSS_SAMPLE_MS);
    const t0 = Date.now();
    trace(`L1: ${CLIENTS} x ${PER_CLIENT} at ${RATE}/s starts`);
    // One message per client per tick, the ticks on a fixed schedule (no drift from slow ticks).
    for (let n = 2; n < PER_CLIENT; n++) {
      send(n);
      const next = t0 + ((n - 1) * 1000) / RATE;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    const t1 = Date.now();
    const total = CLIENTS * PER_CLIENT;
    await settle('the sends', sends, 300_000);
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    await until('every message', () => received() >= total, 300_000);
    const t2 = Date.now();
    sampler.stop();
    trace(`L1: all received`);
    await until(
      'usm_mail empty',
      async () => (await pg.mailRows(parties.map((p) => p.client.address))) === 0,
      120_000,
    );
    const report = deliveryReport(expected, parties);
    const unexpected = unexpectedErrors(parties, []);

    // Memory: the sending phase [t0, t1], its middle and its end (a window of 10% of it each).
    const span = t1 - t0;
    const mid = t0 + span / 2;
    const w = span * 0.05;
    const start = nodes.map((_, i) => medianRss(sampler.samples, i, t0, t0 + 2 * w));
    const middle = nodes.map((_, i) => medianRss(sampler.samples, i, mid - w, mid + w));
    const end = nodes.map((_, i) => medianRss(sampler.samples, i, t1 - 2 * w, t1));
    const peak = nodes.map((_, i) =>
      Math.max(...sampler.samples.filter((s) => s.at >= mid && s.at <= t1).map((s) => s.kib[i]!)),
    );
    const growthMiB = nodes.map((_, i) => mib(end[i]! - middle[i]!));
    const flat = growthMiB.every((g) => g < RSS_SECOND_HALF_GROWTH_BOUND_MIB);
    recordCase({
      id: 'L1',
      title: `Load: ${nodes.length} nodes, ${CLIENTS} clients x ${PER_CLIENT} messages at ${RATE} msg/s each`,
      figures: {
        sent: report.sent,
        received: report.received,
        lost: report.lost,
        duplicated: report.duplicated,
        conversations: report.conversations,
        'conversations out of order': report.outOfOrder,
        'sending phase (s)': Math.round(span / 100) / 10,
        'target rate (msg/s)': CLIENTS * RATE,
        // Below the target when the test process (every client's crypto) cannot keep up: a figure.
        'offered rate (msg/s)': Math.round((CLIENTS * (PER_CLIENT - 2) * 1000) / span),
        'last message received after the last send (ms)': t2 - t1,
        'RSS start / middle / end per node (MiB)': nodes
          .map((_, i) => `${mib(start[i]!)} / ${mib(middle[i]!)} / ${mib(end[i]!)}`)
          .join('; '),
        'RSS peak in the second half per node (MiB)': peak.map(mib).join(' / '),
        'second-half growth per node (MiB)': growthMiB.join(' / '),
        'growth bound (MiB)': RSS_SECOND_HALF_GROWTH_BOUND_MIB,
        'RSS samples': sampler.samples.length,
        'client errors': JSON.stringify(errorCodes(parties)),
      },
      outcome:
        report.lost + report.duplicated + report.outOfOrder === 0 && report.received === total && flat
          ? 'pass'
          : 'fail',
    });
    expect(report).toEqual({
      conversations: CLIENTS * 2,
      sent: total,
      received: total,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(growthMiB.every((g) => Number.isFinite(g))).toBe(true);
    expect(growthMiB.filter((g) => g >= RSS_SECOND_HALF_GROWTH_BOUND_MIB)).toEqual([]);
    expect(nodes.every((n) => n.alive)).toBe(true);
    expect(cluster.errors()).toEqual([]);
    expect(unexpected).toEqual([]);
    await closeAll(parties);
  }, 900_000);
});
