/**
 * Reliability: faults. Three relay nodes, each the built sample app in its own child process, on
 * one PostgreSQL this file controls; MessengerClient parties in the test process. Every case
 * asserts exact outcomes (counts, codes, what each application received) and records its figures
 * in docs/reliability.md (report.ts). Sizes: parameters.ts (CI; USM_SOAK=1 for the soak sizes).
 *
 *  F1  kill -9 of one of three nodes in the middle of N senders x M messages, clients behind an
 *      in-repo TCP load balancer: they reconnect to a surviving node; everything arrives exactly
 *      once, in order per conversation.
 *  F2  PostgreSQL stopped under load: sends are refused with UNAVAILABLE (never a false ack), no
 *      node exits, everything flows after the restart (cross-node push included).
 *  F3  a client partitioned (black-holed, then reset, reconnects refused) while messages are sent
 *      to it: all delivered once, in order; its reconnects follow its backoff.
 *  F4  a client partitioned while it sends, with half its send acks dropped on the wire: all
 *      delivered once, in order; the relay answered the retries `duplicate`; backoff followed.
 *  F5  client clock skew: +-4 minutes accepted, +-6 refused with CLOCK_SKEW and the relay's time.
 *  F6  TTL cleanup on all three nodes at once (every second, small batches) while expiring mail
 *      arrives: each expired row deleted exactly once, live mail untouched, no error.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ClientError, ClientErrorCode } from '@usm/client';
import { randomBytes } from '@usm/crypto';
import {
  type AddressString,
  DEFAULT_SKEW_WINDOW_MS,
  encodeEnvelope,
  generateMessageId,
  parseAddress,
} from '@usm/protocol';
import { openSession, relayKeyFromHex } from '../support/relay-session.js';
import { type ProxiedFrame, TcpProxy } from '../support/tcp-proxy.js';
import { SIZES } from './parameters.js';
import { RELIABILITY_ARTIFACTS, recordCase } from './report.js';
import {
  BUILD_TIMEOUT_MS,
  ControlledPostgres,
  RelayCluster,
  type RelayNode,
  startClusterOnControlledPostgres,
} from './support/relay-cluster.js';
import {
  type Expected,
  type Party,
  addExpected,
  backoffReport,
  closeAll,
  connectAll,
  deliveryReport,
  describeParty,
  errorCodes,
  openParty,
  range,
  settle,
  trace,
  unexpectedErrors,
  until,
  within,
} from './support/parties.js';

const MINUTE_MS = 60_000;
/** Client errors a fault causes on purpose: requests cut by a dropped connection. */
const CHURN = [ClientErrorCode.NotConnected];

let pg: ControlledPostgres;
let cluster: RelayCluster;
let balancer: TcpProxy;
const open: Party[] = [];

beforeAll(async () => {
  ({ pg, cluster } = await startClusterOnControlledPostgres(SIZES.faultNodes));
  balancer = await TcpProxy.start({ targets: cluster.ports });
}, BUILD_TIMEOUT_MS + 120_000);

beforeEach(() => trace(`start: ${expect.getState().currentTestName ?? ''}`));

afterAll(async () => {
  await closeAll(open);
  await cluster?.writeLogs(join(RELIABILITY_ARTIFACTS, 'faults-nodes.log'));
  await balancer?.close();
  await cluster?.stop();
  await pg?.destroy();
}, 60_000);

/** The partitioned clients' reconnect backoff (small, so a CI run sees several attempts). */
const PARTITION_BACKOFF = { baseMs: 200, factor: 2, capMs: 3_000 };
/** Reconnect attempts a partition lasts at least (attempt n = 0..4: ceilings 200 ms to 3 s). */
const PARTITION_ATTEMPTS = 5;

/** How long a probe waits for the relay's reply to one send during the outage (a hang guard). */
const PROBE_REPLY_MS = 10_000;

/** Sends queued at once by one client: within the outbox's bound (OUTBOX_DEFAULTS.maxEntries, 1,000). */
const OUTBOX_WAVE = 500;

/**
 * A partitioned party's reconnects followed its backoff: no attempt before its delay, every delay
 * within its ceiling, every attempt answered, at least PARTITION_ATTEMPTS of them, and one TCP
 * connection through `proxy` per attempt (the first connect plus one per drawn delay).
 */
function expectBackoffFollowed(backoff: ReturnType<typeof backoffReport>, proxy: TcpProxy): void {
  expect(backoff).toMatchObject({ early: 0, outOfBounds: 0, unanswered: 0 });
  expect(backoff.maxAttempt).toBeGreaterThanOrEqual(PARTITION_ATTEMPTS - 1);
  expect(proxy.accepted.length).toBe(1 + backoff.attempts);
}

/** Reconnect delays a party drew so far. */
const draws = (p: Party) => p.timeline.filter((e) => e.kind === 'draw').length;

/**
 * Cuts the party off hard (existing connections reset, new ones refused) until its client has
 * drawn PARTITION_ATTEMPTS reconnect delays, then lets it through again.
 */
async function resetUntilRetried(proxy: TcpProxy, party: Party, who: string): Promise<void> {
  proxy.refuse(true);
  proxy.reset();
  await until(
    `${who} to try reconnecting ${PARTITION_ATTEMPTS} times`,
    () => draws(party) >= PARTITION_ATTEMPTS,
    60_000,
  );
  proxy.refuse(false);
  proxy.heal();
}

/**
 * A proxy frame filter that drops every second socket.io ack the relay writes for a `send`
 * event, per connection. Client frames `45<n>-<id>["send",...` (a BINARY_EVENT with n envelopes)
 * name the ack ids; server frames `43<id>[...` or `46<n>-<id>[...` are the acks.
 */
function sendAckDropper() {
  const state = {
    seen: 0,
    dropped: 0,
    droppedEnvelopes: 0,
    /** Per connection: acks seen; the drops must be floor(seen / 2) on each. */
    perConnection: new Map<number, number>(),
    expectedDrops(): number {
      let n = 0;
      for (const seen of this.perConnection.values()) n += Math.floor(seen / 2);
      return n;
    },
    filter: undefined as unknown as (frame: ProxiedFrame) => boolean,
  };
  const sendIds = new Map<number, Map<number, number>>(); // connection -> ack id -> envelopes
  state.filter = (frame) => {
    if (frame.text === undefined) return true;
    if (frame.from === 'client') {
      const m = /^4(?:5(\d+)-|2)(\d+)\["send"/.exec(frame.text);
      if (m) {
        const ids = sendIds.get(frame.connection) ?? new Map<number, number>();
        ids.set(Number(m[2]), Number(m[1] ?? 0));
        sendIds.set(frame.connection, ids);
      }
      return true;
    }
    const m = /^4(?:3|6\d+-)(\d+)\[/.exec(frame.text);
    const ids = sendIds.get(frame.connection);
    if (!m || !ids?.has(Number(m[1]))) return true;
    const envelopes = ids.get(Number(m[1]))!;
    ids.delete(Number(m[1]));
    state.seen++;
    const seen = (state.perConnection.get(frame.connection) ?? 0) + 1;
    state.perConnection.set(frame.connection, seen);
    if (seen % 2 === 1) return true;
    state.dropped++;
    state.droppedEnvelopes += envelopes;
    return false;
  };
  return state;
}

/** The relay's store outcomes so far on `node` (its metrics), per envelope. */
async function storeOutcomes(node: RelayNode): Promise<{ stored: number; duplicate: number }> {
  return {
    stored: await node.metric('usm_relay_messages_total{event="stored"}'),
    duplicate: await node.metric('usm_relay_messages_total{event="duplicate"}'),
  };
}

/** An envelope the relay can route (random ciphertext: the relay never reads it); its id goes to `ids`. */
function envelopeTo(recipient: AddressString, ids: string[]): Uint8Array {
  const id = generateMessageId();
  ids.push(Buffer.from(id).toString('hex'));
  return encodeEnvelope({ id, recipient: parseAddress(recipient), ciphertext: randomBytes(48) });
}

async function party(options: Partial<Parameters<typeof openParty>[0]> = {}): Promise<Party> {
  const p = await openParty({ relayUrl: balancer.url, relayKeyHex: cluster.relayKeyHex, ...options });
  open.push(p);
  return p;
}

describe('faults: three relay nodes (child processes) on one PostgreSQL', () => {
  it('F1 kill -9 of one of three nodes mid-traffic: clients reconnect through the balancer, every message arrives exactly once, in order', async () => {
    const SENDERS = SIZES.killSenders;
    const PER_SENDER = SIZES.killMessagesPerSender;
    const parties = await Promise.all(range(SENDERS, (i) => party({ name: `k${i}` })));
    await connectAll(parties);
    // A ring: sender i writes to i+1, so each conversation carries PER_SENDER messages in order.
    const peer = (i: number) => parties[(i + 1) % SENDERS]!;
    const expected: Expected = new Map();
    // The first message of each conversation claims the peer's bundle: before the fault.
    await settle(
      'the first messages',
      parties.map((p, i) => {
        addExpected(expected, p, peer(i), `${i}:0`);
        return p.client.send(peer(i).client.address, `${i}:0`);
      }),
    );
    trace('F1: sessions set up, traffic starts');
    const victim = cluster.nodes[1]!;
    const total = SENDERS * PER_SENDER;
    let acked = SENDERS;
    const sends: Promise<unknown>[] = [];
    let killedAtAcked = -1;
    let killed: Promise<unknown> | undefined;
    // Paced: one message per sender every 50 ms, so the kill lands in the middle of the traffic.
    for (let n = 1; n < PER_SENDER; n++) {
      parties.forEach((p, i) => {
        addExpected(expected, p, peer(i), `${i}:${n}`);
        sends.push(p.client.send(peer(i).client.address, `${i}:${n}`).then(() => acked++));
      });
      if (!killed && acked >= total * 0.3) {
        killedAtAcked = acked;
        killed = victim.kill9();
        trace(`F1: node killed at ${acked} acked`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!killed) {
      killedAtAcked = acked;
      killed = victim.kill9();
    }
    const exit = (await killed) as { signal: string | null };
    await settle('the sends', sends);
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    await until('every message', () => received() >= total, 180_000);
    await until(
      'usm_mail empty',
      async () => (await pg.mailRows(parties.map((p) => p.client.address))) === 0,
    );
    const reconnected = parties.filter((p) => p.timeline.some((e) => e.kind === 'disconnected')).length;
    const report = deliveryReport(expected, parties);
    const survivors = cluster.nodes.filter((n) => n !== victim);
    const unexpected = unexpectedErrors(parties, CHURN);
    recordCase({
      id: 'F1',
      title: `kill -9 of one of ${SIZES.faultNodes} relay nodes in the middle of ${SENDERS} senders x ${PER_SENDER} messages`,
      figures: {
        sent: report.sent,
        received: report.received,
        lost: report.lost,
        duplicated: report.duplicated,
        'conversations out of order': report.outOfOrder,
        'acked when killed': killedAtAcked,
        'clients that reconnected': reconnected,
        'other nodes alive': survivors.filter((n) => n.alive).length,
        'client errors': JSON.stringify(errorCodes(parties)),
      },
      outcome:
        report.lost + report.duplicated + report.outOfOrder === 0 && report.received === total
          ? 'pass'
          : 'fail',
    });
    expect(exit.signal).toBe('SIGKILL');
    expect(report).toEqual({
      conversations: SENDERS,
      sent: total,
      received: total,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(reconnected).toBeGreaterThan(0);
    expect(survivors.every((n) => n.alive)).toBe(true);
    expect(unexpected).toEqual([]);
    await closeAll(parties);
    // The node comes back on its port for the next cases (the balancer's targets are unchanged).
    await victim.start();
    trace('F1: the killed node runs again');
  }, 300_000);

  it('F2 PostgreSQL stopped under load: sends refused with UNAVAILABLE, no false ack, no node exits, all flows after the restart', async () => {
    const CLIENTS = SIZES.loadClients;
    const parties = await Promise.all(range(CLIENTS, (i) => party({ name: `o${i}` })));
    await connectAll(parties);
    const peer = (i: number) => parties[(i + 1) % CLIENTS]!;
    const expected: Expected = new Map();
    const ackedAt = new Map<string, number>(); // text -> when its send resolved
    const sends: Promise<unknown>[] = [];
    const sendRound = (n: number) =>
      parties.forEach((p, i) => {
        const text = `${i}:${n}`;
        addExpected(expected, p, peer(i), text);
        sends.push(p.client.send(peer(i).client.address, text).then(() => ackedAt.set(text, Date.now())));
      });
    sendRound(0); // claims the bundles while the database is up
    await settle('the first messages', sends);
    // Raw sessions, one per node, opened while the database is up (the handshake stores a nonce).
    const probes = await Promise.all(
      cluster.nodes.map((n) => openSession(n.url, relayKeyFromHex(cluster.relayKeyHex))),
    );
    const exitsBefore = cluster.nodes.map((n) => n.exits.length);
    const probeReplies: Record<string, number> = {};
    const probeIds: string[] = [];
    let round = 1;
    let sending = true;
    const ticker = (async () => {
      while (sending) {
        sendRound(round++);
        await new Promise((r) => setTimeout(r, 1_000 / SIZES.loadRatePerClient));
      }
    })();
    await until('traffic flowing', () => ackedAt.size >= CLIENTS * 10);
    trace('F2: stopping PostgreSQL');
    await pg.stop();
    trace('F2: PostgreSQL stopped');
    const stoppedAt = pg.events.at(-1)!.at;
    // A client that starts connecting while the database is down.
    const late = await party({ name: 'late' });
    const lateConnected = late.client.connect();
    const outageEnds = stoppedAt + SIZES.postgresOutageMs;
    let aliveDuringOutage: number;
    try {
      while (Date.now() < outageEnds) {
        const replies = await Promise.all(
          probes.map((probe, i) =>
            within(
              PROBE_REPLY_MS,
              probe.request('send', {
                envelopes: [envelopeTo(parties[0]!.client.address as AddressString, probeIds)],
              }),
              () => `node${i + 1}`,
            )
              .then((r) => (r.status === 'ok' ? `ok:${r.results.map((x) => x.status).join(',')}` : r.code))
              .catch((err: unknown) => `no reply: ${(err as Error).message}`),
          ),
        );
        trace(`F2 probes: ${replies.join(' | ')}`);
        for (const key of replies) probeReplies[key] = (probeReplies[key] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, Math.min(1_000, Math.max(0, outageEnds - Date.now()))));
      }
      aliveDuringOutage = cluster.nodes.filter((n) => n.alive).length;
    } finally {
      // Whatever happened, the database comes back for the cases after this one.
      await pg.start();
      trace('F2: PostgreSQL started again');
    }
    const startedAt = pg.events.at(-1)!.at;
    const ackedInOutage = [...ackedAt.values()].filter((t) => t > stoppedAt + 1_000 && t < startedAt).length;
    await until('traffic after the restart', () => [...ackedAt.values()].some((t) => t > startedAt), 60_000);
    const roundsAfter = round + 10;
    await until('ten more rounds', () => round >= roundsAfter, 60_000);
    sending = false;
    await ticker;
    await settle('the sends', sends, 180_000);
    await within(60_000, lateConnected, () => describeParty(late));
    const total = [...expected.values()].reduce((n, t) => n + t.length, 0);
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    await until('every message', () => received() >= total, 180_000);
    const addresses = [...parties, late].map((p) => p.client.address as string);
    await until('usm_mail empty', async () => (await pg.mailRows(addresses)) === 0, 60_000);
    // Cross-node push works again: x and y on different nodes, no periodic fetch; only a push delivers.
    const x = await party({ name: 'x', relayUrl: cluster.nodes[0]!.url, fetchIntervalMs: 3_600_000 });
    const y = await party({ name: 'y', relayUrl: cluster.nodes[2]!.url, fetchIntervalMs: 3_600_000 });
    await connectAll([x, y]);
    await x.client.send(y.client.address, 'after the outage');
    await until('the cross-node push', () => y.messages.length === 1, 30_000);
    const probeRows = await pg.query(
      async (c) =>
        (
          await c.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM usm_mail WHERE encode(message_id, 'hex') = ANY($1::text[])",
            [probeIds],
          )
        ).rows[0]!.n,
    );
    for (const s of probes) s.close();
    const report = deliveryReport(expected, parties);
    const unexpected = unexpectedErrors([...parties, late, x, y], [...CHURN, 'RELAY_ERROR/UNAVAILABLE']);
    const exited = cluster.nodes.filter((n, i) => n.exits.length !== exitsBefore[i]).length;
    // What the nodes logged at error level: the refused requests, each naming its SQLSTATE, and
    // a cleanup run that the minute cron happened to start during the outage (retried next run).
    const errorLines = cluster.errors();
    const otherErrors = errorLines.filter(
      (l) =>
        !/: USM relay: '[a-z:]+' failed in the database \(SQLSTATE /.test(l) &&
        !/: USM relay: a cleanup run failed \(SQLSTATE [A-Z0-9]+\); the next run retries\.$/.test(l),
    );
    const probesSent = Object.values(probeReplies).reduce((a, b) => a + b, 0);
    recordCase({
      id: 'F2',
      title: `PostgreSQL stopped for ${SIZES.postgresOutageMs / 1000} s under load (${CLIENTS} clients, ${SIZES.loadRatePerClient} msg/s each, ${SIZES.faultNodes} nodes)`,
      figures: {
        sent: report.sent,
        received: report.received,
        lost: report.lost,
        duplicated: report.duplicated,
        'conversations out of order': report.outOfOrder,
        'probe sends during the outage': probesSent,
        'probe replies': JSON.stringify(probeReplies),
        'probe envelopes stored': probeRows,
        'acks during the outage': ackedInOutage,
        'nodes alive during / after': `${aliveDuringOutage} / ${cluster.nodes.filter((n) => n.alive).length}`,
        'node exits': exited,
        'node error lines (requests refused for the database)': errorLines.length - otherErrors.length,
        'other node error lines': otherErrors.length,
        'cross-node push after restart': y.messages.length,
        'client errors': JSON.stringify(errorCodes([...parties, late])),
      },
      outcome:
        report.lost +
          report.duplicated +
          report.outOfOrder +
          ackedInOutage +
          exited +
          probeRows +
          otherErrors.length ===
          0 && probeReplies['UNAVAILABLE'] === probesSent
          ? 'pass'
          : 'fail',
    });
    expect(probesSent).toBeGreaterThanOrEqual(SIZES.faultNodes * 5);
    expect(probeReplies).toEqual({ UNAVAILABLE: probesSent });
    expect(probeRows).toBe(0);
    expect(ackedInOutage).toBe(0);
    expect(aliveDuringOutage).toBe(SIZES.faultNodes);
    expect(exited).toBe(0);
    expect(otherErrors).toEqual([]);
    expect(report).toEqual({
      conversations: CLIENTS,
      sent: total,
      received: total,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(late.client.connected).toBe(true);
    expect(y.messages.map((m) => m.kind === 'text' && m.text)).toEqual(['after the outage']);
    expect(unexpected).toEqual([]);
    await closeAll([...parties, late, x, y]);
  }, 300_000);

  it('F3 a client partitioned (black-holed, then reset, reconnects refused) while messages are sent to it: all arrive once, in order; backoff followed', async () => {
    const N = SIZES.partitionReceive;
    const proxy = await TcpProxy.start({ targets: [cluster.nodes[0]!.port] });
    try {
      const a = await party({ name: 'F3 sender', relayUrl: cluster.nodes[1]!.url });
      const b = await party({ name: 'F3 partitioned', relayUrl: proxy.url, backoff: PARTITION_BACKOFF });
      await connectAll([a, b]);
      const expected: Expected = new Map();
      addExpected(expected, a, b, 'm0');
      await a.client.send(b.client.address, 'm0');
      await until('the first message', () => b.messages.length === 1);
      proxy.blackhole();
      // Stored by the relay, pushed into the black hole; in waves the sender's outbox can hold.
      for (let from = 0; from < N; from += OUTBOX_WAVE) {
        const wave = range(Math.min(OUTBOX_WAVE, N - from), (k) => {
          const text = `m${from + k + 1}`;
          addExpected(expected, a, b, text);
          return a.client.send(b.client.address, text);
        });
        await settle('the sends', wave);
      }
      const heldWhileBlackholed = b.messages.length;
      const stillUp = b.client.connected;
      await resetUntilRetried(proxy, b, 'the partitioned client');
      await until('every message', () => b.messages.length >= N + 1, 120_000);
      await until(
        'usm_mail empty',
        async () => (await pg.mailRows([a.client.address, b.client.address])) === 0,
      );
      await until('every receipt', () => a.delivered.length >= N + 1, 60_000);
      const report = deliveryReport(expected, [a, b]);
      const backoff = backoffReport(b);
      const unexpected = unexpectedErrors([a, b], CHURN);
      recordCase({
        id: 'F3',
        title: `A client partitioned (black-hole, then RST, reconnects refused) while ${N} messages are sent to it`,
        figures: {
          sent: report.sent,
          received: report.received,
          lost: report.lost,
          duplicated: report.duplicated,
          'conversations out of order': report.outOfOrder,
          'received while black-holed': heldWhileBlackholed,
          'reconnect attempts': backoff.attempts,
          'TCP connections seen by the proxy': proxy.accepted.length,
          'highest attempt n': backoff.maxAttempt,
          backoff: `base ${b.backoff.baseMs} ms, x${b.backoff.factor}, cap ${b.backoff.capMs} ms`,
          'attempts before their delay': backoff.early,
          'delays out of [0, ceiling)': backoff.outOfBounds,
          'largest delay drawn (ms)': backoff.maxDelayMs,
          'largest timer lateness (ms)': backoff.maxLateMs,
          receipts: a.delivered.length,
        },
        outcome:
          report.lost + report.duplicated + report.outOfOrder + backoff.early + backoff.outOfBounds === 0
            ? 'pass'
            : 'fail',
      });
      expect(stillUp).toBe(true);
      expect(heldWhileBlackholed).toBe(1);
      expect(report).toEqual({
        conversations: 1,
        sent: N + 1,
        received: N + 1,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
      });
      expectBackoffFollowed(backoff, proxy);
      expect(new Set(a.delivered).size).toBe(N + 1);
      expect(unexpected).toEqual([]);
      await closeAll([a, b]);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  it('F4 a client partitioned while sending, half its send acks dropped on the wire: all arrive once, in order; every retry deduplicated; backoff followed', async () => {
    const N = SIZES.partitionSend;
    const proxy = await TcpProxy.start({ targets: [cluster.nodes[0]!.port] });
    const acks = sendAckDropper();
    proxy.filter = acks.filter;
    try {
      const c = await party({
        name: 'F4 partitioned sender',
        relayUrl: proxy.url,
        backoff: PARTITION_BACKOFF,
        requestTimeoutMs: 1_000,
      });
      const d = await party({ name: 'F4 receiver', relayUrl: cluster.nodes[2]!.url });
      await connectAll([c, d]);
      const outcomes = () => storeOutcomes(cluster.nodes[0]!);
      const before = await outcomes();
      const expected: Expected = new Map();
      let acked = 0;
      const sends: Promise<unknown>[] = [];
      let partitioned = false;
      for (let i = 0; i < N; i++) {
        addExpected(expected, c, d, `s${i}`);
        sends.push(c.client.send(d.client.address, `s${i}`).then(() => acked++));
        if (i === 0) await sends[0]; // the bundle claim, before the partition
        if (!partitioned && acked >= N * 0.4) {
          partitioned = true;
          proxy.blackhole();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!partitioned) proxy.blackhole();
      const ackedBeforeReset = acked;
      await resetUntilRetried(proxy, c, 'the partitioned sender');
      await settle('the sends', sends);
      await until('every message', () => d.messages.length >= N, 120_000);
      await until(
        'usm_mail empty',
        async () => (await pg.mailRows([c.client.address, d.client.address])) === 0,
      );
      const after = await outcomes();
      const stored = after.stored - before.stored;
      const duplicates = after.duplicate - before.duplicate;
      const report = deliveryReport(expected, [c, d]);
      const backoff = backoffReport(c);
      const unexpected = unexpectedErrors([c, d], CHURN);
      recordCase({
        id: 'F4',
        title: `A client partitioned while sending ${N} messages, half of its send acks dropped on the wire`,
        figures: {
          sent: report.sent,
          received: report.received,
          lost: report.lost,
          duplicated: report.duplicated,
          'conversations out of order': report.outOfOrder,
          'send acks seen / dropped': `${acks.seen} / ${acks.dropped}`,
          'envelopes whose ack was dropped': acks.droppedEnvelopes,
          'relay answers stored / duplicate': `${stored} / ${duplicates}`,
          'retries stored again after delivery (the receiver deduplicated them)': stored - N,
          'acked before the reset': ackedBeforeReset,
          'reconnect attempts': backoff.attempts,
          'highest attempt n': backoff.maxAttempt,
          backoff: `base ${c.backoff.baseMs} ms, x${c.backoff.factor}, cap ${c.backoff.capMs} ms`,
          'attempts before their delay': backoff.early,
          'delays out of [0, ceiling)': backoff.outOfBounds,
          'largest timer lateness (ms)': backoff.maxLateMs,
          'client errors': JSON.stringify(errorCodes([c, d])),
        },
        outcome:
          report.lost + report.duplicated + report.outOfOrder + backoff.early + backoff.outOfBounds === 0 &&
          stored + duplicates - N >= acks.droppedEnvelopes
            ? 'pass'
            : 'fail',
      });
      expect(report).toEqual({
        conversations: 1,
        sent: N,
        received: N,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
      });
      // Half of the send acks the relay wrote were dropped (every second one, per connection).
      expect(acks.dropped).toBe(acks.expectedDrops());
      expect(acks.dropped).toBeGreaterThan(0);
      // Each envelope of a dropped ack was stored and then sent again: the relay answered the retry
      // `duplicate` while the row was there, or stored it again once the receiver had acked it (the
      // receiver's seen-id memory absorbed that copy: it reached the application once, above).
      expect(stored + duplicates - N).toBeGreaterThanOrEqual(acks.droppedEnvelopes);
      expect(stored).toBeGreaterThanOrEqual(N);
      expectBackoffFollowed(backoff, proxy);
      expect(unexpected).toEqual([]);
      await closeAll([c, d]);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  it('F5 client clock skew: +-4 minutes accepted, +-6 minutes refused with CLOCK_SKEW and the relay time', async () => {
    expect(DEFAULT_SKEW_WINDOW_MS).toBe(5 * MINUTE_MS);
    const outcomes: Record<string, string> = {};
    const relayTimes: number[] = [];
    for (const skew of [-4, 4, -6, 6]) {
      const p = await party({ name: `skew${skew}`, clock: { now: () => Date.now() + skew * MINUTE_MS } });
      const before = Date.now();
      try {
        await within(20_000, p.client.connect(), () => describeParty(p));
        outcomes[`${skew} min`] = 'connected';
      } catch (err) {
        outcomes[`${skew} min`] = ClientError.is(err) ? err.code : String(err);
        if (ClientError.is(err, ClientErrorCode.ClockSkew)) {
          // The relay's time, not the client's: within the wall-clock span of the attempt.
          const t = err.relayTimeMs ?? Number.NaN;
          if (t >= before - 1_000 && t <= Date.now() + 1_000) relayTimes.push(t);
        }
      }
      await p.client.close();
    }
    recordCase({
      id: 'F5',
      title: 'Client clock skew: +-4 min accepted, +-6 min refused with CLOCK_SKEW carrying the relay time',
      figures: {
        'skew window (ms)': DEFAULT_SKEW_WINDOW_MS,
        ...outcomes,
        'refusals carrying the relay time': relayTimes.length,
      },
      outcome:
        outcomes['-4 min'] === 'connected' &&
        outcomes['4 min'] === 'connected' &&
        outcomes['-6 min'] === 'CLOCK_SKEW' &&
        outcomes['6 min'] === 'CLOCK_SKEW' &&
        relayTimes.length === 2
          ? 'pass'
          : 'fail',
    });
    expect(outcomes).toEqual({
      '-4 min': 'connected',
      '4 min': 'connected',
      '-6 min': ClientErrorCode.ClockSkew,
      '6 min': ClientErrorCode.ClockSkew,
    });
    expect(relayTimes).toHaveLength(2);
  }, 60_000);
});

describe('faults: TTL cleanup on three nodes at once', () => {
  /** Mail stored with the default TTL (30 days) to an offline recipient: the cleanup must leave it. */
  const LIVE = 20;
  /** Mail stored with a 1 s TTL while every node's cleanup runs each second in batches of 20. */
  const EXPIRING = 3_000;
  let ttlCluster: RelayCluster | undefined;
  let live: Party;

  beforeAll(async () => {
    live = await party({ name: 'F6 live recipient' });
    const s = await party({ name: 'F6 live sender' });
    await connectAll([live, s]);
    await live.client.close(); // offline from here on
    await settle(
      'the live messages',
      range(LIVE, (i) => s.client.send(live.client.address, `live ${i}`)),
    );
    await s.client.close();
    // The three nodes of the other cases stop (their cleanup runs once a minute); three nodes
    // with a 1 s TTL and a cleanup every second take over the database.
    await Promise.all(cluster.nodes.map((n) => n.stop()));
    ttlCluster = await RelayCluster.start({
      nodes: SIZES.faultNodes,
      databaseUrl: pg.url,
      env: { MAIL_TTL_SECONDS: '1', CLEANUP_CRON: '* * * * * *', CLEANUP_BATCH_SIZE: '20', LOG_LEVEL: 'log' },
    });
  }, 120_000);

  afterAll(async () => {
    await ttlCluster?.stop();
  });

  it('F6 TTL cleanup running on all three nodes at once: each expired row deleted exactly once, live mail kept, no error', async () => {
    const t = ttlCluster!;
    const deleted = () =>
      Promise.all(t.nodes.map((n) => n.metric('usm_relay_cleanup_deleted_rows_total{table="usm_mail"}')));
    const r = await party({
      name: 'F6 expiring recipient',
      relayUrl: t.nodes[0]!.url,
      relayKeyHex: t.relayKeyHex,
    });
    await connectAll([r]);
    await r.client.close();
    const senders = await Promise.all(
      t.nodes.map((n, i) => party({ name: `F6 sender ${i}`, relayUrl: n.url, relayKeyHex: t.relayKeyHex })),
    );
    await connectAll(senders);
    const liveBefore = await pg.mailRows([live.client.address]);
    let peakRows = 0;
    const sampler = setInterval(
      () => void pg.mailRows([r.client.address]).then((n) => (peakRows = Math.max(peakRows, n))),
      200,
    );
    try {
      const per = EXPIRING / senders.length;
      await settle(
        'the expiring messages',
        senders.flatMap((s, i) => range(per, (k) => s.client.send(r.client.address, `expiring ${i}:${k}`))),
      );
      await until(
        'every expired row deleted',
        async () => (await pg.mailRows([r.client.address])) === 0,
        60_000,
      );
    } finally {
      clearInterval(sampler);
    }
    await until('the nodes to count every deletion', async () => sum(await deleted()) >= EXPIRING, 10_000);
    const perNode = await deleted();
    const liveAfter = await pg.mailRows([live.client.address]);
    const errors = t.errors();
    const runs = t.nodes.map((n) => n.logs().filter((l) => /^cleanup deleted/.test(l.message)).length);
    recordCase({
      id: 'F6',
      title: `TTL cleanup on ${SIZES.faultNodes} nodes at once (every second, batches of 20) while ${EXPIRING} messages with a 1 s TTL arrive`,
      figures: {
        'expiring messages stored': EXPIRING,
        'their rows at the peak': peakRows,
        'their rows after': 0,
        'deleted per node': perNode.join(' / '),
        'deleted in all': sum(perNode),
        'runs that deleted rows, per node': runs.join(' / '),
        'live rows before / after': `${liveBefore} / ${liveAfter}`,
        'error log lines': errors.length,
      },
      outcome:
        sum(perNode) === EXPIRING && liveAfter === LIVE && errors.length === 0 && perNode.every((n) => n > 0)
          ? 'pass'
          : 'fail',
    });
    expect(sum(perNode)).toBe(EXPIRING);
    expect(perNode.every((n) => n > 0)).toBe(true);
    expect({ liveBefore, liveAfter }).toEqual({ liveBefore: LIVE, liveAfter: LIVE });
    expect(errors).toEqual([]);
    expect(unexpectedErrors([r, ...senders], CHURN)).toEqual([]);
    await closeAll(senders);
  }, 180_000);
});

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
