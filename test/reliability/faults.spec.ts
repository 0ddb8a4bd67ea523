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
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClientError, ClientErrorCode } from '@usm/client';
import { DEFAULT_SKEW_WINDOW_MS } from '@usm/protocol';
import { TcpProxy } from '../support/tcp-proxy.js';
import { SIZES } from './parameters.js';
import { recordCase } from './report.js';
import {
  BUILD_TIMEOUT_MS,
  ControlledPostgres,
  RelayCluster,
  ensureRelayBuilt,
} from './support/relay-cluster.js';
import {
  type Expected,
  type Party,
  addExpected,
  backoffReport,
  closeAll,
  deliveryReport,
  errorCodes,
  openParty,
  range,
  unexpectedErrors,
  until,
} from './support/parties.js';

const MINUTE_MS = 60_000;
/** Client errors a fault causes on purpose: requests cut by a dropped connection. */
const CHURN = [ClientErrorCode.NotConnected];

let pg: ControlledPostgres;
let cluster: RelayCluster;
let balancer: TcpProxy;
const open: Party[] = [];

beforeAll(async () => {
  await ensureRelayBuilt();
  pg = await ControlledPostgres.start();
  cluster = await RelayCluster.start({ nodes: SIZES.faultNodes, databaseUrl: pg.url });
  balancer = await TcpProxy.start({ targets: cluster.ports });
}, BUILD_TIMEOUT_MS + 120_000);

afterAll(async () => {
  await closeAll(open);
  await balancer?.close();
  await cluster?.stop();
  await pg?.destroy();
}, 60_000);

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
    await Promise.all(parties.map((p) => p.client.connect()));
    // A ring: sender i writes to i+1, so each conversation carries PER_SENDER messages in order.
    const peer = (i: number) => parties[(i + 1) % SENDERS]!;
    const expected: Expected = new Map();
    // The first message of each conversation claims the peer's bundle: before the fault.
    await Promise.all(
      parties.map((p, i) => {
        addExpected(expected, p, peer(i), `${i}:0`);
        return p.client.send(peer(i).client.address, `${i}:0`);
      }),
    );
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
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!killed) {
      killedAtAcked = acked;
      killed = victim.kill9();
    }
    const exit = (await killed) as { signal: string | null };
    await Promise.all(sends);
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    await until('every message', () => received() >= total, 180_000);
    await until(
      'usm_mail empty',
      async () => (await pg.mailRows(parties.map((p) => p.client.address))) === 0,
    );
    const reconnected = parties.filter((p) => p.timeline.some((e) => e.kind === 'disconnected')).length;
    const report = deliveryReport(expected, parties);
    const survivors = cluster.nodes.filter((n) => n !== victim);
    const duplicates = (
      await Promise.all(survivors.map((n) => n.metric('usm_relay_messages_total{event="duplicate"}')))
    ).reduce((a, b) => a + b, 0);
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
        'retries answered duplicate (survivors)': duplicates,
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
  }, 300_000);

  it('F5 client clock skew: +-4 minutes accepted, +-6 minutes refused with CLOCK_SKEW and the relay time', async () => {
    expect(DEFAULT_SKEW_WINDOW_MS).toBe(5 * MINUTE_MS);
    const outcomes: Record<string, string> = {};
    const relayTimes: number[] = [];
    for (const skew of [-4, 4, -6, 6]) {
      const p = await party({
        name: `skew${skew}`,
        clock: { now: () => Date.now() + skew * MINUTE_MS },
        reconnect: false,
      });
      const before = Date.now();
      try {
        await p.client.connect();
        outcomes[`${skew} min`] = 'connected';
      } catch (err) {
        outcomes[`${skew} min`] = ClientError.is(err) ? err.code : 'other error';
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
