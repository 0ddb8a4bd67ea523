/**
 * End-to-end delivery through the client library: MessengerClient (libs/client) over real
 * socket.io to the real relay module (libs/relay, Nest apps on loopback) on a real PostgreSQL
 * (test/support/postgres.ts). No fakes anywhere on the path.
 *
 *  - offline delivery: 100 messages to an offline recipient arrive once each, in order, and the
 *    relay's mail table is empty after the acks;
 *  - the relay restarted (the Nest app closed, a new one booted on the same database and port)
 *    in the middle of a conversation both ways: nothing lost or duplicated;
 *  - a client "killed" between persisting a decrypted message and acking the relay, reopened from
 *    its store: every message reaches the app exactly once;
 *  - a deliberately corrupted session state: the conversation recovers through a session reset;
 *  - 20 clients x 200 messages to random peers across two relay nodes: zero lost, zero
 *    duplicated, per-conversation order kept (the counts are printed).
 */
import { generateIdentityKeyPair, ready } from '@usm/crypto';
import {
  ClientError,
  ClientErrorCode,
  type IncomingMessage,
  MemoryStore,
  MessengerClient,
  type MessengerClientOptions,
} from '@usm/client';
import { type InProcessRelay, startInProcessRelay } from '../support/in-process-relay.js';
import { usePostgres } from '../support/postgres.js';

await ready();
const RELAY_IDENTITY = generateIdentityKeyPair();
const RELAY_KEY_HEX = Buffer.from(RELAY_IDENTITY.publicKey.bytes).toString('hex');

type Node = InProcessRelay;

const startNode = (databaseUrl: string, port = 0): Promise<Node> =>
  startInProcessRelay({ databaseUrl, identity: RELAY_IDENTITY, port });

interface Party {
  client: MessengerClient;
  store: MemoryStore;
  messages: IncomingMessage[];
  delivered: string[];
  errors: ClientError[];
}

const clients: MessengerClient[] = [];

async function party(
  url: string,
  store = new MemoryStore(),
  extra: Partial<MessengerClientOptions> = {},
): Promise<Party> {
  const client = await MessengerClient.open({
    relayUrl: url,
    relayIdentityKey: RELAY_KEY_HEX,
    store,
    backoff: { baseMs: 50, capMs: 500 },
    outbox: { retry: { baseMs: 100, capMs: 1000 } },
    fetchIntervalMs: 2000,
    ...extra,
  });
  clients.push(client);
  const p: Party = { client, store, messages: [], delivered: [], errors: [] };
  client.on('message', (m) => void p.messages.push(m));
  client.on('delivered', ({ id }) => void p.delivered.push(id));
  client.on('error', (e) => void p.errors.push(e));
  return p;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const texts = (p: Party) => p.messages.map((m) => (m.kind === 'text' ? m.text : '<bytes>'));
const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** Errors a test tolerates: connection churn it caused on purpose. */
const churn = (e: ClientError) => e.code === ClientErrorCode.NotConnected;

describe('client library end to end (real relay, real PostgreSQL, real socket.io)', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.app.close()));
  });
  const pg = usePostgres();
  let node: Node;
  beforeAll(async () => {
    node = await startNode(pg.url);
    nodes.push(node);
  });

  let db: Awaited<ReturnType<typeof pg.client>> | undefined;
  /** Rows in usm_mail for these parties (receipts to parties of earlier tests may still arrive). */
  const mailRows = async (...of: Party[]) => {
    db ??= await pg.client();
    const addresses = of.map((p) => p.client.address as string);
    const result = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM usm_mail WHERE recipient = ANY($1::text[])',
      [addresses],
    );
    return result.rows[0]!.n;
  };

  it('offline delivery: B offline while A sends 100; B connects and gets all 100 in order, once each; usm_mail empty after', async () => {
    const a = await party(node.url);
    const bStore = new MemoryStore();
    const b0 = await party(node.url, bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]); // B publishes its prekeys
    await b0.client.close();

    const sent = await Promise.all(
      range(100, (i) => `offline ${i}`).map((t) => a.client.send(b0.client.address, t)),
    );
    expect(await mailRows(b0)).toBe(100);

    const b = await party(node.url, bStore);
    await b.client.connect();
    await until('100 messages', () => b.messages.length >= 100);
    await until('receipts for all 100', () => a.delivered.length >= 100);
    await until('usm_mail empty', async () => (await mailRows(a, b)) === 0);
    expect(texts(b)).toEqual(range(100, (i) => `offline ${i}`));
    expect(b.messages.map((m) => m.id)).toEqual(sent.map((s) => s.id));
    expect(new Set(a.delivered)).toEqual(new Set(sent.map((s) => s.id)));
    expect(a.delivered).toHaveLength(100);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('relay restarted in the middle of a conversation: clients reconnect, nothing lost or duplicated', async () => {
    const restartable = await startNode(pg.url);
    nodes.push(restartable);
    const a = await party(restartable.url);
    const b = await party(restartable.url);
    await Promise.all([a.client.connect(), b.client.connect()]);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      pending.push(a.client.send(b.client.address, `a${i}`), b.client.send(a.client.address, `b${i}`));
    }
    await until('some delivered', () => a.messages.length + b.messages.length >= 5);
    await restartable.app.close();
    nodes.splice(nodes.indexOf(restartable), 1);
    await until('both see the drop', () => !a.client.connected && !b.client.connected);
    for (let i = 20; i < 40; i++) {
      pending.push(a.client.send(b.client.address, `a${i}`), b.client.send(a.client.address, `b${i}`));
    }
    const reborn = await startNode(pg.url, restartable.port);
    nodes.push(reborn);
    await Promise.all(pending);
    await until('all 80', () => a.messages.length >= 40 && b.messages.length >= 40);
    await until('usm_mail empty', async () => (await mailRows(a, b)) === 0);
    expect(texts(b)).toEqual(range(40, (i) => `a${i}`));
    expect(texts(a)).toEqual(range(40, (i) => `b${i}`));
    expect([...a.errors, ...b.errors].filter((e) => !churn(e))).toEqual([]);
  });

  it('client killed between decrypt-persist and ack, reopened from its store: each message reaches the app exactly once', async () => {
    const a = await party(node.url);
    const bStore = new MemoryStore();
    let persisted = 0;
    const victim: { client?: MessengerClient } = {};
    const b0 = await party(node.url, bStore, {
      hooks: {
        afterPersist: async () => {
          // The process "dies" right after the 7th message's batch is durable: no ack, no app.
          if (++persisted === 7) await victim.client!.close();
        },
      },
    });
    victim.client = b0.client;
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await Promise.all(range(20, (i) => `k${i}`).map((t) => a.client.send(b0.client.address, t)));
    await until('the victim died', () => persisted >= 7 && !b0.client.connected);
    expect(await mailRows(b0)).toBeGreaterThanOrEqual(20 - 6);

    const b = await party(node.url, bStore);
    await b.client.connect();
    await until('20 overall', () => b0.messages.length + b.messages.length >= 20);
    await until('usm_mail empty', async () => (await mailRows(a, b)) === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect([...texts(b0), ...texts(b)]).toEqual(range(20, (i) => `k${i}`));
    expect(b0.messages.length).toBeLessThan(7); // the 7th and later came from the reopened client
    expect(b.errors).toEqual([]);
  });

  it('session reset after a deliberately corrupted state: the conversation recovers', async () => {
    const a = await party(node.url);
    const bStore = new MemoryStore();
    const b0 = await party(node.url, bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await a.client.send(b0.client.address, 'before');
    await until('before', () => b0.messages.length === 1);
    await b0.client.send(a.client.address, 'reply');
    await until('reply and its receipt', () => a.messages.length === 1 && b0.delivered.length === 1);
    await until('usm_mail empty', async () => (await mailRows(a, b0)) === 0);
    await b0.client.close();
    const key = `session/${a.client.address}`;
    const saved = (await bStore.get(key))!;
    await bStore.write({ put: [[key, crypto.getRandomValues(new Uint8Array(saved.length))]] });

    const b = await party(node.url, bStore);
    await b.client.connect();
    await a.client.send(b.client.address, 'lost to the corruption');
    await until('B reports it', () => b.errors.some((e) => e.code === ClientErrorCode.DecryptFailed));
    expect(b.errors.map((e) => e.code)).toEqual([
      ClientErrorCode.CorruptStore,
      ClientErrorCode.DecryptFailed,
    ]);
    // B reset the session on its own (NO_SESSION); A adopts it when the reset message arrives.
    await until('A took the reset', async () => (await mailRows(a, b)) === 0 && a.errors.length === 0);
    await new Promise((r) => setTimeout(r, 300));
    await a.client.send(b.client.address, 'after the reset');
    await b.client.send(a.client.address, 'and back');
    await until('both', () => b.messages.length === 1 && a.messages.length === 2);
    expect(texts(b)).toEqual(['after the reset']);
    expect(texts(a)).toEqual(['reply', 'and back']);
    expect(a.errors).toEqual([]);
  });

  it('20 clients x 200 messages to random peers across two relay nodes: zero lost, zero duplicated, order kept', async () => {
    const second = await startNode(pg.url);
    nodes.push(second);
    const CLIENTS = 20;
    const PER_CLIENT = 200;
    const parties = await Promise.all(
      range(CLIENTS, (i) => String(i)).map((_, i) => party(i % 2 === 0 ? node.url : second.url)),
    );
    await Promise.all(parties.map((p) => p.client.connect()));
    // A seeded generator (mulberry32): the same peers every run.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const expected = new Map<string, string[]>(); // "from->to" -> texts in send order
    const plan = parties.map((p, i) =>
      range(PER_CLIENT, (n) => {
        let j = Math.floor(random() * (CLIENTS - 1));
        if (j >= i) j++;
        const to = parties[j]!.client.address;
        const text = `${i}:${n}`;
        const key = `${p.client.address}->${to}`;
        expected.set(key, [...(expected.get(key) ?? []), text]);
        return { to, text };
      }),
    );
    const started = Date.now();
    await Promise.all(
      parties.map((p, i) => Promise.all(plan[i]!.map(({ to, text }) => p.client.send(to, text)))),
    );
    const total = CLIENTS * PER_CLIENT;
    const received = () => parties.reduce((n, p) => n + p.messages.length, 0);
    await until('every message', () => received() >= total, 120_000);
    await until('usm_mail empty', async () => (await mailRows(...parties)) === 0, 60_000);
    await new Promise((r) => setTimeout(r, 300));

    const got = new Map<string, string[]>();
    for (const p of parties) {
      for (const m of p.messages) {
        const key = `${m.from}->${p.client.address}`;
        got.set(key, [...(got.get(key) ?? []), m.kind === 'text' ? m.text : '<bytes>']);
      }
    }
    const sentTexts = [...expected.values()].flat();
    const gotTexts = [...got.values()].flat();
    const lost = sentTexts.filter((t) => !gotTexts.includes(t)).length;
    const duplicated = gotTexts.length - new Set(gotTexts).size;
    let outOfOrder = 0;
    for (const [key, texts] of expected)
      if (JSON.stringify(got.get(key)) !== JSON.stringify(texts)) outOfOrder++;
    const errors = parties.flatMap((p) => p.errors).filter((e) => !churn(e));
    console.log(
      `20 clients x 200 messages across 2 relay nodes: sent ${sentTexts.length}, received ${gotTexts.length}, ` +
        `lost ${lost}, duplicated ${duplicated}, conversations ${expected.size} (out of order ${outOfOrder}), ` +
        `receipts ${parties.reduce((n, p) => n + p.delivered.length, 0)}, errors ${errors.length}, ` +
        `${Date.now() - started} ms`,
    );
    expect({ sent: sentTexts.length, received: gotTexts.length, lost, duplicated, outOfOrder }).toEqual({
      sent: total,
      received: total,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(errors).toEqual([]);
  }, 240_000);
});
