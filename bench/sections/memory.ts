/**
 * Memory: the relay's resident memory per idle authenticated connection, against the bare
 * socket.io server (bench/peers/bare-socketio.mjs) holding as many idle sockets, in the same
 * run. Each server is a child process started with --expose-gc and bench/peers/gc-hook.mjs; its
 * VmRSS is read from /proc/<pid>/status after three collections. The sockets live in client
 * child processes (bench/peers/idle-clients.ts), at most CLIENTS_PER_PROCESS each.
 */
import { toHex } from '@usm/crypto';
import { type Child, TSX, startBareSocketIo, startChild } from '../lib/children.js';
import { freshDatabase } from '../lib/postgres.js';
import { formatNumber } from '../lib/report.js';
import { relayIdentity, startRelayNode } from '../lib/relay-node.js';
import { defineSection, type SectionContext } from '../lib/section.js';
import { setTimeout as sleep } from 'node:timers/promises';

const levels = (quick: boolean) => (quick ? [1_000] : [1_000, 5_000, 10_000]);
const CLIENTS_PER_PROCESS = 2_500;
const WARMUP = 500;

/** Client processes that open sockets to `url` on demand. */
class IdleFleet {
  readonly #children: Child[] = [];
  readonly #counts: number[] = [];

  constructor(
    private readonly url: string,
    private readonly kind: 'relay' | 'bare',
    private readonly relayKey: string,
  ) {}

  /** Opens sockets until `total` are open, spread over client processes. */
  async grow(total: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    let open = this.#counts.reduce((a, b) => a + b, 0);
    while (open < total) {
      let i = this.#counts.findIndex((n) => n < CLIENTS_PER_PROCESS);
      if (i < 0) i = await this.#spawn();
      const n = Math.min(CLIENTS_PER_PROCESS - this.#counts[i]!, total - open);
      this.#counts[i]! += n;
      open += n;
      jobs.push(this.#open(this.#children[i]!, n));
    }
    await Promise.all(jobs);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.stop(2_000)));
  }

  async #spawn(): Promise<number> {
    const child = startChild(
      [...TSX, 'bench/peers/idle-clients.ts'],
      { URL: this.url, KIND: this.kind, RELAY_KEY: this.relayKey },
      'idle clients',
    );
    await this.#reply(child, 'ready');
    this.#children.push(child);
    this.#counts.push(0);
    return this.#children.length - 1;
  }

  async #open(child: Child, count: number): Promise<void> {
    const done = this.#reply(child, 'opened');
    child.process.send({ type: 'open', count });
    await done;
  }

  #reply(child: Child, type: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type?: string; message?: string }) => {
        if (m?.type === type) {
          child.process.off('message', onMessage);
          resolve();
        } else if (m?.type === 'error') {
          child.process.off('message', onMessage);
          reject(new Error(`bench: idle clients: ${m.message}`));
        }
      };
      child.process.on('message', onMessage);
      child.process.once('exit', (code) =>
        reject(new Error(`bench: idle clients exited (${code}):\n${child.output()}`)),
      );
    });
  }
}

/** RSS after GC: the lowest of three settled readings (the others still hold a collection's slack). */
async function settledRss(server: Child): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    await sleep(300);
    readings.push(await server.rssAfterGc());
  }
  return Math.min(...readings);
}

async function measure(
  ctx: SectionContext,
  label: string,
  server: Child,
  fleet: IdleFleet,
  warmUp: IdleFleet,
): Promise<{ base: number; perConn: Map<number, number> }> {
  // Connections opened and closed once first: one-off growth (JIT code, heap and WASM memory
  // grown by the first handshakes, pools) is then in the baseline, not charged per connection.
  await warmUp.grow(WARMUP);
  await warmUp.stop();
  const base = await settledRss(server);
  const perConn = new Map<number, number>();
  for (const n of levels(ctx.quick)) {
    ctx.step(`${label}: ${formatNumber(n)} idle connections`);
    await fleet.grow(n);
    const rss = await settledRss(server);
    perConn.set(n, (rss - base) / n);
  }
  return { base, perConn };
}

async function run(ctx: SectionContext): Promise<void> {
  ctx.step('starting PostgreSQL, a relay node and the bare socket.io server');
  const db = await freshDatabase('memory');
  const { keyPair } = await relayIdentity();
  const relayKey = toHex(keyPair.publicKey.bytes);
  const node = await startRelayNode(db.url);
  const relayFleet = new IdleFleet(node.url, 'relay', relayKey);
  let relay: Awaited<ReturnType<typeof measure>>;
  try {
    relay = await measure(ctx, 'relay', node.child, relayFleet, new IdleFleet(node.url, 'relay', relayKey));
  } finally {
    await relayFleet.stop();
    await node.stop();
  }
  const bare = await startBareSocketIo();
  const bareIdle = new IdleFleet(bare.url, 'bare', relayKey);
  let b: Awaited<ReturnType<typeof measure>>;
  try {
    b = await measure(ctx, 'bare socket.io', bare.child, bareIdle, new IdleFleet(bare.url, 'bare', relayKey));
  } finally {
    await bareIdle.stop();
    await bare.stop();
  }
  for (const [n, bytes] of relay.perConn) ctx.record(`relay_bytes_per_idle_conn_at_${n}`, bytes);
  for (const [n, bytes] of b.perConn) ctx.record(`bare_bytes_per_idle_conn_at_${n}`, bytes);
  const top = Math.max(...levels(ctx.quick));
  ctx.record('bytes_per_idle_conn', relay.perConn.get(top)!);
  ctx.record('bare_socketio_bytes_per_idle_conn', b.perConn.get(top)!);
  ctx.record('ratio', relay.perConn.get(top)! / b.perConn.get(top)!);
  ctx.record('connections', top);
  ctx.record('relay_base_rss_mib', relay.base / 2 ** 20);
  ctx.record('bare_base_rss_mib', b.base / 2 ** 20);
}

export const memory = defineSection({
  id: 'memory',
  title: 'Memory per idle connection',
  description:
    'Resident memory of one node of the built sample relay per idle authenticated connection (the handshake ' +
    'done, the socket in its mailbox room), at 1,000, 5,000 and 10,000 connections (quick: 1,000), against ' +
    'the bare socket.io server holding as many idle sockets in the same run. Each server is a child process ' +
    'run with --expose-gc; its VmRSS (/proc/<pid>/status) is read after three collections, the lowest of three ' +
    'readings, at each level and before the first counted connection (after 500 connections opened and closed ' +
    'again, so one-off growth such as JIT code and the heap the first handshakes grew is not charged per ' +
    'connection): (RSS at n - RSS before) / n. The sockets live in ' +
    `client child processes (${formatNumber(CLIENTS_PER_PROCESS)} each).`,
  packages: ['socket.io'],
  quickBudgetSeconds: 40,
  metrics: [
    { key: 'bytes_per_idle_conn', label: 'relay, per idle authenticated connection', unit: 'B' },
    { key: 'bare_socketio_bytes_per_idle_conn', label: 'bare socket.io, per idle connection', unit: 'B' },
    { key: 'ratio', label: 'relay / bare socket.io', unit: 'x', goal: { op: '<=', value: 1.5 } },
    { key: 'connections', label: 'at connections', unit: '' },
    { key: 'relay_base_rss_mib', label: 'relay RSS before any connection', unit: 'MiB', digits: 1 },
    { key: 'bare_base_rss_mib', label: 'bare socket.io RSS before any connection', unit: 'MiB', digits: 1 },
  ],
  plan: (quick) => 1 + 2 * levels(quick).length,
  run,
  docs: () =>
    'Where the memory went (heap snapshots of the relay child, v8.writeHeapSnapshot after a collection, at ' +
    '0 and 2,000 idle authenticated connections, self sizes per connection): before the fix the relay held ' +
    "49.4 KB of JavaScript heap per connection against 11.3 KB for bare socket.io. About 34 KB of it was Nest's " +
    "IoAdapter binding each of the gateway's eight handlers per socket as a long-lived rxjs pipeline " +
    '(`fromEvent` + `mergeMap` + `takeUntil(disconnect$)`, plus a shared `disconnect$`): 32 ' +
    '`OperatorSubscriber`s and their `_finalizers` arrays (V8 reserves 17 slots on the first push: 152 B each), ' +
    'some 160 closures and 140 contexts from rxjs. Off the heap there was nothing to find: external and ' +
    'ArrayBuffer memory is under 200 B per connection, and neither server enables per-message deflate ' +
    '(engine.io leaves it off), so no zlib context per socket. The fix: the sample app uses `RelayIoAdapter` ' +
    '(libs/relay/src/relay-io.adapter.ts), which binds each handler as one plain listener and builds an rxjs ' +
    "pipeline only while a message is handled (same guards, filters and acks, pinned against Nest's adapter " +
    "by libs/relay/test/relay-io-adapter.spec.ts), and the gateway forgets a socket's handshake state once it " +
    'is authenticated. After it: 14.9 KB of heap per connection; what remains above bare socket.io (about ' +
    '3.6 KB) is the eight per-socket bound handlers and their listeners, the packet middleware and error ' +
    "listener, `socket.data` and the mailbox room. A host that keeps Nest's own IoAdapter pays the 34 KB.",
});
