/**
 * Reliability: no message lost. Two relay nodes, each the built sample app in its own child
 * process, on one PostgreSQL this file controls; MessengerClient parties in the test process,
 * counting what each application received. A message counts as sent when its `send()` resolved.
 *
 *  N1  an offline backlog past MAX_SKIP, and more mail sent while the recipient reconnects and
 *      fetches it (pushes arrive while the backlog is still being paged).
 *  N2  a recipient whose socket stopped reading while large messages are sent to it: the relay's
 *      memory stays bounded (pushes withheld), and everything arrives once the socket reads again.
 *  N3  pairs chatting both ways for a while as PostgreSQL backends are terminated at random (the
 *      adapters' LISTEN connections among them) and one node is killed and started again.
 *
 * Each case: every resolved send delivered exactly once, in order per conversation, every
 * delivery receipt back, the relay's mail table empty at the end.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ClientErrorCode, MemoryStore } from '@usm/client';
import { TcpProxy } from '../support/tcp-proxy.js';
import { SIZES } from './parameters.js';
import { RELIABILITY_ARTIFACTS, recordCase } from './report.js';
import {
  BUILD_TIMEOUT_MS,
  ControlledPostgres,
  RelayCluster,
  type RelayNode,
  RssSampler,
  startClusterOnControlledPostgres,
} from './support/relay-cluster.js';
import {
  type Expected,
  allDelivered,
  type Party,
  type PartyOptions,
  addExpected,
  closeAll,
  connectAll,
  deliveredExactly,
  deliveryFigures,
  deliveryReport,
  errorCodes,
  openParty,
  range,
  settle,
  trace,
  unexpectedErrors,
  until,
} from './support/parties.js';

/** Sends one client queues at once: within the outbox's bound (OUTBOX_DEFAULTS.maxEntries, 1,000). */
const WAVE = 500;
/** The client's default periodic fetch: the cases must not lean on a quick sweep. */
const DEFAULT_FETCH_INTERVAL_MS = 30_000;
/** Client errors a fault causes on purpose: requests cut by a dropped connection or a failed query. */
const CHURN = [ClientErrorCode.NotConnected, `${ClientErrorCode.RelayError}/UNAVAILABLE`];

let pg: ControlledPostgres;
let cluster: RelayCluster;
const open: Party[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  ({ pg, cluster } = await startClusterOnControlledPostgres(SIZES.deliveryNodes));
}, BUILD_TIMEOUT_MS + 120_000);

beforeEach(() => trace(`start: ${expect.getState().currentTestName ?? ''}`));

afterAll(async () => {
  await closeAll(open);
  await Promise.all(proxies.map((p) => p.close()));
  await cluster?.writeLogs(join(RELIABILITY_ARTIFACTS, 'delivery-nodes.log'));
  await cluster?.stop();
  await pg?.destroy();
}, 60_000);

async function party(url: string, options: Partial<PartyOptions> = {}): Promise<Party> {
  const p = await openParty({
    relayUrl: url,
    relayKeyHex: cluster.relayKeyHex,
    fetchIntervalMs: DEFAULT_FETCH_INTERVAL_MS,
    ...options,
  });
  open.push(p);
  return p;
}

/** Sends `contents` from `from` to `to` in waves within the outbox bound; returns the ids `send` resolved with. */
async function sendAll(
  from: Party,
  to: Party,
  contents: readonly (string | Uint8Array)[],
  expected: Expected,
  label: (i: number) => string,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < contents.length; i += WAVE) {
    const wave = contents.slice(i, i + WAVE);
    wave.forEach((_, j) => addExpected(expected, from, to, label(i + j)));
    const sent = await Promise.all(wave.map((c) => from.client.send(to.client.address, c)));
    ids.push(...sent.map((r) => r.id));
  }
  return ids;
}

/** A bytes message whose first bytes carry `text`, so deliveryReport can tell them apart. */
function bytesMessage(text: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(new TextEncoder().encode(text));
  return out;
}

/** What `deliveryReport` compares for bytes messages: the label at their start. */
function labelOfBytes(p: Party): void {
  for (const m of p.messages.splice(0)) {
    if (m.kind === 'text') {
      p.messages.push(m);
      continue;
    }
    const { bytes, ...rest } = m;
    const end = bytes.indexOf(0);
    p.messages.push({ ...rest, kind: 'text', text: new TextDecoder().decode(bytes.subarray(0, end)) });
  }
}

const missingReceipts = (sender: Party, ids: readonly string[]) => {
  const got = new Set(sender.delivered);
  return ids.filter((id) => !got.has(id)).length;
};

async function mailRowsOf(...parties: Party[]): Promise<number> {
  return pg.mailRows(parties.map((p) => p.client.address));
}

async function rssMiB(node: RelayNode): Promise<number> {
  return (await node.rssKiB()) / 1024;
}

describe('no message lost: two relay nodes (child processes) on one PostgreSQL', () => {
  it('N1 an offline backlog past MAX_SKIP, and more mail sent during the reconnect: every message once, in order, every receipt back', async () => {
    const [node1, node2] = cluster.nodes as [RelayNode, RelayNode];
    const a = await party(node1.url, { name: 'n1-sender' });
    const bStore = new MemoryStore();
    const b0 = await party(node2.url, { name: 'n1-recipient', store: bStore });
    await connectAll([a, b0]);
    const expected: Expected = new Map();
    const ids = await sendAll(a, b0, ['hello'], expected, () => 'hello');
    await until('hello', () => b0.messages.length === 1);
    await b0.client.close();

    const BACKLOG = SIZES.backlogMessages;
    const LIVE = SIZES.backlogLiveMessages;
    const backlog = range(BACKLOG, (i) => `backlog ${i}`);
    ids.push(...(await sendAll(a, b0, backlog, expected, (i) => backlog[i]!)));
    expect(await mailRowsOf(b0)).toBe(BACKLOG);
    trace(`N1: ${BACKLOG} stored for the offline recipient`);

    const b = await party(node2.url, { name: 'n1-recipient-again', store: bStore });
    b.messages.push(...b0.messages);
    const live = range(LIVE, (i) => `live ${i}`);
    // The recipient connects and pages through its backlog while the new mail is sent and pushed.
    const [, liveIds] = await Promise.all([
      b.client.connect(),
      sendAll(a, b0, live, expected, (i) => live[i]!),
    ]);
    ids.push(...liveIds);
    const total = 1 + BACKLOG + LIVE;
    await until('every message', () => b.messages.length >= total, 180_000);
    await until('every receipt', () => missingReceipts(a, ids) === 0, 120_000);
    await until('usm_mail empty', async () => (await mailRowsOf(a, b)) === 0, 60_000);
    const report = deliveryReport(expected, [b]);
    const pending = b.errors.filter((e) => e.code === ClientErrorCode.DecryptPending).length;
    recordCase({
      id: 'N1',
      title: `An offline backlog of ${BACKLOG} messages (past MAX_SKIP), then ${LIVE} more sent while the recipient reconnects and fetches it (sender and recipient on different nodes)`,
      figures: {
        ...deliveryFigures(report),
        'receipts back': ids.length - missingReceipts(a, ids),
        'DECRYPT_PENDING reports': pending,
        'mail rows after': await mailRowsOf(a, b),
        'client errors': JSON.stringify(errorCodes([a, b])),
      },
      outcome: deliveredExactly(report, total) ? 'pass' : 'fail',
    });
    expect(report).toEqual(allDelivered(1, total));
    expect(missingReceipts(a, ids)).toBe(0);
    expect(unexpectedErrors([a, b], [])).toEqual([]);
    await closeAll([a, b]);
  }, 600_000);

  it('N2 a recipient whose socket stopped reading while large messages are sent to it: relay memory bounded, then every message once, in order', async () => {
    const [node1, node2] = cluster.nodes as [RelayNode, RelayNode];
    const proxy = await TcpProxy.start({ targets: [node2.port] });
    proxies.push(proxy);
    const a = await party(node1.url, { name: 'n2-sender' });
    const b = await party(proxy.url, { name: 'n2-recipient' });
    await connectAll([a, b]);
    const expected: Expected = new Map();
    const ids = await sendAll(a, b, ['hello'], expected, () => 'hello');
    await until('hello', () => b.messages.length === 1);

    const N = SIZES.stalledMessages;
    const withheldBefore = await node2.metric('usm_relay_messages_total{event="withheld"}');
    const rssBefore = await rssMiB(node2);
    const sampler = new RssSampler([node2]);
    sampler.start(250);
    proxy.stopReading();
    const labels = range(N, (i) => `stalled ${i}`);
    const contents = labels.map((l) => bytesMessage(l, SIZES.stalledMessageBytes));
    ids.push(...(await sendAll(a, b, contents, expected, (i) => labels[i]!)));
    trace(`N2: ${N} stored while the recipient does not read`);
    // Let the notices of the last sends reach node 2 (a hint: the figure is read, not timed).
    await until('node 2 withheld pushes', async () => {
      return (await node2.metric('usm_relay_messages_total{event="withheld"}')) > withheldBefore;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    sampler.stop();
    const peakMiB = Math.max(...sampler.samples.map((s) => s.kib[0]! / 1024));
    const withheld = (await node2.metric('usm_relay_messages_total{event="withheld"}')) - withheldBefore;
    const storedMiB = (N * SIZES.stalledMessageBytes) / 2 ** 20;
    proxy.resumeReading();
    const total = 1 + N;
    await until(
      'every message',
      () => {
        labelOfBytes(b);
        return b.messages.length >= total;
      },
      300_000,
    );
    await until('every receipt', () => missingReceipts(a, ids) === 0, 120_000);
    await until('usm_mail empty', async () => (await mailRowsOf(a, b)) === 0, 60_000);
    labelOfBytes(b);
    const report = deliveryReport(expected, [b]);
    const syncs = await node2.metric('usm_relay_mail_sync_total{reason="backlog"}');
    const reconnected = b.timeline.some((e) => e.kind === 'disconnected');
    const growth = peakMiB - rssBefore;
    recordCase({
      id: 'N2',
      title: `${N} messages of ${SIZES.stalledMessageBytes / 1024} KiB to a recipient whose socket stopped reading (relay memory bounded), then it reads again`,
      figures: {
        ...deliveryFigures(report),
        'receipts back': ids.length - missingReceipts(a, ids),
        'MiB stored meanwhile': Math.round(storedMiB),
        "recipient's node RSS before / peak (MiB)": `${rssBefore.toFixed(0)} / ${peakMiB.toFixed(0)}`,
        'pushes withheld (messages)': withheld,
        'mail:sync (backlog) sent': syncs,
        'recipient reconnected (heartbeat)': String(reconnected),
        'client errors': JSON.stringify(errorCodes([a, b])),
      },
      outcome:
        report.lost + report.duplicated + report.outOfOrder === 0 &&
        report.received === total &&
        growth < storedMiB / 2
          ? 'pass'
          : 'fail',
    });
    expect(report).toEqual(allDelivered(1, total));
    expect(missingReceipts(a, ids)).toBe(0);
    expect(withheld).toBeGreaterThan(0);
    // Without the cap, node 2 would buffer every push for the stalled socket: all of storedMiB.
    expect(growth).toBeLessThan(storedMiB / 2);
    expect(unexpectedErrors([a, b], CHURN)).toEqual([]);
    await closeAll([a, b]);
  }, 600_000);

  it('N3 pairs chatting both ways while PostgreSQL backends (LISTEN ones included) are terminated at random and a node is killed and restarted', async () => {
    const balancer = await TcpProxy.start({ targets: cluster.ports });
    proxies.push(balancer);
    const PAIRS = SIZES.chatPairs;
    const parties = await Promise.all(range(2 * PAIRS, (i) => party(balancer.url, { name: `c${i}` })));
    await connectAll(parties);
    const partner = (i: number) => parties[i % 2 === 0 ? i + 1 : i - 1]!;
    const expected: Expected = new Map();
    const sent = new Map<Party, string[]>(); // ids each party's sends resolved with
    for (const p of parties) sent.set(p, []);
    const sends: Promise<unknown>[] = [];
    const sendOne = (i: number, n: number) => {
      const p = parties[i]!;
      const text = `${i}:${n}`;
      addExpected(expected, p, partner(i), text);
      sends.push(p.client.send(partner(i).client.address, text).then(({ id }) => sent.get(p)!.push(id)));
    };
    // The first message of each conversation claims the partner's bundle: before any fault.
    parties.forEach((_, i) => sendOne(i, 0));
    await settle('the first messages', sends);

    let stop = false;
    const counters = { terminated: 0, listenTerminated: 0, rounds: 0 };
    const chat = (async () => {
      for (let n = 1; !stop; n++) {
        parties.forEach((_, i) => {
          if (Math.random() < 0.8) sendOne(i, n);
        });
        await new Promise((r) => setTimeout(r, SIZES.chatIntervalMs * (0.5 + Math.random())));
      }
    })();
    // Every 0.5 to 2 s, terminate 1 to 3 random backends of the relay database (pooled
    // connections: stores, fetches, acks, notices); every third round, every node's LISTEN one.
    const faults = (async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 1_500));
        counters.rounds++;
        const listen = counters.rounds % 3 === 0;
        const r = await pg
          .query((c) =>
            c.query<{ listening: boolean }>(
              `SELECT pg_terminate_backend(pid), query LIKE 'LISTEN %' AS listening
                 FROM (SELECT pid, query FROM pg_stat_activity
                        WHERE datname = 'usm_relay' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                          AND (query LIKE 'LISTEN %') = $1
                        ORDER BY random() LIMIT $2) AS victims`,
              [listen, listen ? 100 : 1 + Math.floor(Math.random() * 3)],
            ),
          )
          .catch(() => ({ rows: [] as { listening: boolean }[] }));
        counters.terminated += r.rows.length;
        counters.listenTerminated += r.rows.filter((row) => row.listening).length;
      }
    })();
    const chatMs = SIZES.chatSeconds * 1_000;
    await new Promise((r) => setTimeout(r, chatMs * 0.4));
    const victim = cluster.nodes[1]!;
    trace('N3: killing node 2');
    const exit = await victim.kill9();
    await new Promise((r) => setTimeout(r, 3_000));
    await victim.start();
    trace('N3: node 2 runs again');
    await new Promise((r) => setTimeout(r, chatMs * 0.6 - 3_000));
    stop = true;
    await Promise.all([chat, faults]);
    await settle('the sends', sends, 180_000);
    const total = [...expected.values()].reduce((n, l) => n + l.length, 0);
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    const allIds = () => parties.flatMap((p) => sent.get(p)!.map((id) => ({ p, id })));
    const receiptsMissing = () => allIds().filter(({ p, id }) => !p.delivered.includes(id)).length;
    await until('every message', () => received() >= total, 180_000);
    await until('every receipt', () => receiptsMissing() === 0, 180_000);
    await until('usm_mail empty', async () => (await mailRowsOf(...parties)) === 0, 120_000);
    const report = deliveryReport(expected, parties);
    const pending = parties.flatMap((p) => p.errors).filter((e) => e.code === ClientErrorCode.DecryptPending);
    const nodeErrors = cluster.errors();
    recordCase({
      id: 'N3',
      title: `${PAIRS} pairs chatting both ways for ${SIZES.chatSeconds} s through a balancer over ${SIZES.deliveryNodes} nodes, PostgreSQL backends terminated at random (LISTEN ones included), one node killed and restarted`,
      figures: {
        ...deliveryFigures(report),
        'receipts back': allIds().length - receiptsMissing(),
        'backends terminated': counters.terminated,
        'of them LISTEN connections': counters.listenTerminated,
        'node killed (signal)': String(exit.signal),
        'DECRYPT_PENDING reports': pending.length,
        'mail rows after': await mailRowsOf(...parties),
        'client errors': JSON.stringify(errorCodes(parties)),
      },
      outcome: deliveredExactly(report, total) ? 'pass' : 'fail',
    });
    expect(report).toEqual(allDelivered(2 * PAIRS, total));
    expect(receiptsMissing()).toBe(0);
    expect(counters.listenTerminated).toBeGreaterThan(0);
    expect(exit.signal).toBe('SIGKILL');
    expect(unexpectedErrors(parties, CHURN)).toEqual([]);
    expect(nodeErrors.filter((l) => !/failed in the database|adapter failed/.test(l))).toEqual([]);
    await closeAll(parties);
  }, 900_000);
});
