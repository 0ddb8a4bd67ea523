/**
 * MessengerClient against an in-memory relay on a real socket.io server (fake-relay.test.ts):
 * sessions, receipts, offline delivery, exactly-once across a crash, redeliveries, order after
 * reordering, lost acks, the pinned key, clock skew, session reset, and the outbox bound.
 * The same scenarios against the real relay and PostgreSQL are in test/e2e/.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import { type MailItem, ProtocolErrorCode, ProtocolError } from '@usm/protocol';
import { ClientError, ClientErrorCode } from './errors.js';
import { FakeRelay } from './fake-relay.test.js';
import {
  type IncomingMessage,
  MessengerClient,
  type MessengerClientOptions,
  type UnsupportedMessage,
} from './messenger-client.js';
import { MemoryStore } from './storage/memory-store.js';
import { queueUnknownKind } from './unknown-kind.test.js';
import { recordCase } from '../../../test/reliability/report.js';

let relay: FakeRelay;
const clients: MessengerClient[] = [];

beforeEach(async () => {
  await ready();
  relay = new FakeRelay();
  await relay.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await relay.stop();
});

interface Harness {
  client: MessengerClient;
  store: MemoryStore;
  messages: IncomingMessage[];
  delivered: string[];
  errors: ClientError[];
}

async function open(
  store = new MemoryStore(),
  extra: Partial<MessengerClientOptions> = {},
  listen = true,
): Promise<Harness> {
  const client = await MessengerClient.open({
    relayUrl: relay.url,
    relayIdentityKey: relay.publicKeyHex,
    store,
    backoff: { baseMs: 20, capMs: 200 },
    outbox: { retry: { baseMs: 50, capMs: 200 } },
    ...extra,
  });
  clients.push(client);
  const h: Harness = { client, store, messages: [], delivered: [], errors: [] };
  client.on('error', (e) => h.errors.push(e));
  client.on('delivered', ({ id }) => void h.delivered.push(id));
  if (listen) client.on('message', (m) => void h.messages.push(m));
  return h;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const texts = (h: Harness) =>
  h.messages.map((m) => (m.kind === 'text' ? m.text : `<${m.bytes.length} bytes>`));

describe('MessengerClient', () => {
  it('sets up a session on first contact, exchanges text and bytes both ways, and reports receipts', async () => {
    const a = await open();
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    expect(a.client.address).toMatch(/^[A-Za-z0-9_-]{43}\.1$/);
    expect(a.client.safetyNumber(b.client.address)).toMatch(/^\d{60}$/);
    expect(a.client.safetyNumber(b.client.address)).toBe(b.client.safetyNumber(a.client.address));

    const { id } = await a.client.send(b.client.address, 'hello Bob');
    await until('B gets it', () => b.messages.length === 1);
    expect(b.messages[0]).toMatchObject({
      from: a.client.address,
      id,
      kind: 'text',
      text: 'hello Bob',
      sequence: 0,
    });
    await until('A gets the receipt', () => a.delivered.includes(id));

    await b.client.send(a.client.address, new Uint8Array([1, 2, 3]));
    await until('A gets bytes', () => a.messages.length === 1);
    const m = a.messages[0]!;
    expect(m.kind === 'bytes' && [...m.bytes]).toEqual([1, 2, 3]);
    await until('mailboxes drained', () => relay.mailCount() === 0);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    // A receipt gets no receipt: after the dust settles each side received exactly one receipt.
    await new Promise((r) => setTimeout(r, 100));
    expect(a.delivered).toEqual([id]);
    expect(b.delivered).toHaveLength(1);
  });

  it('delivers mail sent while the recipient was offline, in order and once, then empties its mailbox', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    const b0 = await open(bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await a.client.send(b0.client.address, 'first');
    await until('first', () => b0.messages.length === 1);
    await until('first acked', () => relay.mailCount(b0.client.address) === 0);
    await b0.client.close();

    for (let i = 0; i < 30; i++) await a.client.send(b0.client.address, `m${i}`);
    expect(relay.mailCount(b0.client.address)).toBe(30);
    // The relay's page order is not the send order: B must still hand them over in order.
    relay.reverseMailbox(b0.client.address);

    const b = await open(bStore);
    await b.client.connect();
    await until('30 messages', () => b.messages.length === 30);
    expect(texts(b)).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
    expect(b.messages.every((m) => !m.late && m.skippedBefore === 0)).toBe(true);
    await until('mailbox empty', () => relay.mailCount(b.client.address) === 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(b.messages).toHaveLength(30);
  });

  it('hands a message to the app exactly once when the client dies between persisting it and acking the relay', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    let persisted = 0;
    const victim: { client?: MessengerClient } = {};
    const b0 = await open(bStore, {
      hooks: {
        afterPersist: async () => {
          if (++persisted === 3) await victim.client!.close(); // "kill -9" right after the 3rd batch is durable
        },
      },
    });
    victim.client = b0.client;
    await Promise.all([a.client.connect(), b0.client.connect()]);
    for (let i = 0; i < 5; i++) await a.client.send(b0.client.address, `m${i}`);
    await until('the victim died', () => persisted >= 3 && b0.client.connected === false);
    // The third message is persisted but not acked: the relay still holds it (and later ones).
    expect(relay.mailCount(b0.client.address)).toBeGreaterThanOrEqual(3);

    const b = await open(bStore);
    await b.client.connect();
    await until('5 messages overall', () => b0.messages.length + b.messages.length >= 5);
    await until('mailbox empty', () => relay.mailCount(b.client.address) === 0);
    await new Promise((r) => setTimeout(r, 100));
    expect([...texts(b0), ...texts(b)]).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('shows a redelivered message zero more times, and drops mail whose relay stamp is not the session peer', async () => {
    const a = await open();
    const b = await open();
    const c = await open();
    await Promise.all([a.client.connect(), b.client.connect(), c.client.connect()]);
    await a.client.send(b.client.address, 'once');
    const { envelope, sender, receivedAt, seq } = relay.mailboxes.get(b.client.address)![0]!;
    const captured: MailItem = { envelope, sender, receivedAt, cursor: String(seq) };
    await until('delivered', () => b.messages.length === 1);
    await until('acked', () => relay.mailCount(b.client.address) === 0);
    relay.pushAgain(b.client.address, captured); // an exact replay
    relay.pushAgain(b.client.address, { ...captured, sender: c.client.address }); // replay as C
    await until('the forged stamp reported', () => b.errors.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(texts(b)).toEqual(['once']);
    const err = b.errors[0]!;
    expect(ClientError.is(err, ClientErrorCode.DecryptFailed)).toBe(true);
    expect(err.peer).toBe(c.client.address);
    expect(
      ProtocolError.is(err.cause, ProtocolErrorCode.IdentityMismatch) ||
        ProtocolError.is(err.cause, ProtocolErrorCode.NoSession),
    ).toBe(true);
    recordCase({
      id: 'T2b',
      title:
        'Exact replay fed directly to the client (the same mail pushed again, and again under another stamp): shown zero more times',
      figures: {
        'mail fed twice': 2,
        'app deliveries': b.messages.length,
        'reported (wrong stamp)': b.errors.length,
      },
      outcome: b.messages.length === 1 ? 'pass' : 'fail',
    });
  });

  it('retries a send whose ack was lost; the relay answers duplicate and the recipient sees it once', async () => {
    const a = await open();
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    relay.dropSendAcks = 1;
    const { id } = await a.client.send(b.client.address, 'lost ack');
    expect(relay.events.filter((e) => e === 'send').length).toBeGreaterThanOrEqual(2);
    await until('delivered', () => b.messages.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.messages.map((m) => m.id)).toEqual([id]);
  }, 20_000);

  it('refuses a relay that does not prove the pinned key (HANDSHAKE_FAILED)', async () => {
    const other = new FakeRelay();
    const a = await open(new MemoryStore(), { relayIdentityKey: other.publicKeyHex, reconnect: false });
    const err = await a.client.connect().catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.HandshakeFailed)).toBe(true);
    expect(ProtocolError.is((err as ClientError).cause, ProtocolErrorCode.IdentityMismatch)).toBe(true);
  });

  it('reports CLOCK_SKEW with the relay time when the device clock is 6 minutes off', async () => {
    const relayNow = Date.UTC(2026, 10, 25, 12, 0, 0);
    relay.clock = { now: () => relayNow };
    const a = await open(new MemoryStore(), {
      clock: { now: () => relayNow + 6 * 60_000 },
      reconnect: false,
    });
    const err = await a.client.connect().catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.ClockSkew)).toBe(true);
    expect((err as ClientError).relayTimeMs).toBe(relayNow);
  });

  it('with reconnect off, connect() rejects with NOT_CONNECTED when the connection fails (it never stays pending)', async () => {
    const port = relay.port;
    await relay.stop(); // nothing listens there any more
    const a = await open(new MemoryStore(), { relayUrl: `http://127.0.0.1:${port}`, reconnect: false });
    const err = await a.client.connect().catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.NotConnected)).toBe(true);
    expect((err as ClientError).message).toMatch(/reconnect is off/);
    expect(a.client.connected).toBe(false);
    await relay.start(); // for afterEach
  });

  it('recovers a conversation whose stored session was corrupted (automatic reset on NO_SESSION)', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    const b0 = await open(bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await a.client.send(b0.client.address, 'before');
    await until('before', () => b0.messages.length === 1);
    await b0.client.send(a.client.address, 'reply');
    await until('reply', () => a.messages.length === 1);
    await until('receipts in and acked', () => b0.delivered.length === 1 && relay.mailCount() === 0);
    await b0.client.close();
    const key = `session/${a.client.address}`;
    const garbage = crypto.getRandomValues(new Uint8Array((await bStore.get(key))!.length));
    await bStore.write({ put: [[key, garbage]] });

    const b = await open(bStore);
    await b.client.connect();
    expect(b.errors.map((e) => e.code)).toEqual([]); // loaded lazily: nothing yet
    await a.client.send(b.client.address, 'lost to the corruption');
    await until('B reports and resets', () => b.errors.some((e) => e.code === ClientErrorCode.DecryptFailed));
    expect(b.errors.map((e) => e.code)).toEqual([
      ClientErrorCode.CorruptStore,
      ClientErrorCode.DecryptFailed,
    ]);
    await until(
      'A adopted the new session',
      () => relay.mailCount(a.client.address) === 0 && relay.events.length > 0,
    );
    await new Promise((r) => setTimeout(r, 200));
    await a.client.send(b.client.address, 'after the reset');
    await b.client.send(a.client.address, 'and back');
    await until('both', () => b.messages.length === 1 && a.messages.length === 2);
    expect(texts(b)).toEqual(['after the reset']);
    expect(texts(a)).toEqual(['reply', 'and back']);
    expect(a.errors).toEqual([]);
  });

  it('resetSession on demand: the peer adopts the new session and the conversation goes on', async () => {
    const a = await open();
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'one');
    await until('one', () => b.messages.length === 1);
    await b.client.resetSession(a.client.address);
    await a.client.send(b.client.address, 'two');
    await b.client.send(a.client.address, 'three');
    await until('all', () => b.messages.length === 2 && a.messages.length === 1);
    expect(texts(b)).toEqual(['one', 'two']);
    expect(texts(a)).toEqual(['three']);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('queues offline once a session exists, and refuses with QUEUE_FULL at the bound without writing', async () => {
    const a = await open(new MemoryStore(), { outbox: { maxEntries: 3 } });
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'online');
    await a.client.close();
    const a2 = await open(a.store, { outbox: { maxEntries: 3 } });
    const pending = [0, 1, 2].map((i) => a2.client.send(b.client.address, `offline ${i}`));
    await until('three queued', async () => (await a2.store.list('outbox/m/')).length === 3);
    const err = await a2.client.send(b.client.address, 'one too many').catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.QueueFull)).toBe(true);
    await a2.client.connect();
    await Promise.all(pending);
    await until('B got all', () => b.messages.length === 4);
    expect(texts(b)).toEqual(['online', 'offline 0', 'offline 1', 'offline 2']);
  });

  it('needs a connection for a first message (NOT_CONNECTED) and reconnects after the relay restarts', async () => {
    const a = await open();
    const b = await open();
    const err = await a.client.send(b.client.address, 'too early').catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.NotConnected)).toBe(true);
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'before restart');
    await until('first', () => b.messages.length === 1);
    await relay.stop();
    await until('both down', () => !a.client.connected && !b.client.connected);
    const pending = a.client.send(b.client.address, 'during the outage');
    await relay.start(); // same port, same mailboxes
    await pending;
    await until('second', () => b.messages.length === 2);
    expect(texts(b)).toEqual(['before restart', 'during the outage']);
  });

  it('holds messages in the inbox until the app listens', async () => {
    const a = await open();
    const b = await open(new MemoryStore(), {}, false);
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'waiting');
    await until('acked', () => relay.mailCount(b.client.address) === 0);
    expect((await b.store.list('inbox/')).length).toBe(1);
    b.client.on('message', (m) => void b.messages.push(m));
    await until('delivered', () => b.messages.length === 1);
    await until('inbox emptied', () => b.messages.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect((await b.store.list('inbox/')).length).toBe(0);
  });

  it('reports receipts to a `delivered` listener with no `message` listener, also behind a message held for one', async () => {
    const a = await open(new MemoryStore(), {}, false); // listens for `delivered` only
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    const first = await a.client.send(b.client.address, 'first');
    await until('receipt for the first', () => a.delivered.includes(first.id));

    // B's reply waits in A's inbox (no `message` listener); the receipt for A's next message is
    // numbered after it, and still reaches A's `delivered` listener.
    await b.client.send(a.client.address, 'reply');
    await until('the reply acked', () => relay.mailCount(a.client.address) === 0);
    const second = await a.client.send(b.client.address, 'second');
    await until('receipt for the second', () => a.delivered.includes(second.id));
    expect(a.messages).toEqual([]);
    expect((await a.store.list('inbox/')).length).toBe(1);

    a.client.on('message', (m) => void a.messages.push(m));
    await until('the reply', () => a.messages.length === 1);
    expect(texts(a)).toEqual(['reply']);
    await until('inbox emptied', async () => (await a.store.list('inbox/')).length === 0);
    expect(a.delivered).toEqual([first.id, second.id]);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('refuses a bundle whose signed prekey signature was forged (PROTOCOL_VIOLATION, nothing queued), and a peer without prekeys (RELAY_ERROR)', async () => {
    const a = await open();
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    const published = relay.prekeys.get(b.client.address)!;
    const record = published.signed!.record.slice();
    record[record.length - 1]! ^= 0x01; // last byte of the signature
    published.signed = { ...published.signed!, record };
    const err = await a.client.send(b.client.address, 'to a forged bundle').catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.ProtocolViolation)).toBe(true);
    expect(ProtocolError.is((err as ClientError).cause, ProtocolErrorCode.BadSignature)).toBe(true);
    expect(await a.store.list('outbox/')).toEqual([]);

    const nobody = await open(new MemoryStore(), {}, false); // never connects: never publishes
    const err2 = await a.client.send(nobody.client.address, 'hello?').catch((e: unknown) => e);
    expect(ClientError.is(err2, ClientErrorCode.RelayError)).toBe(true);
    expect(ProtocolError.is((err2 as ClientError).cause, ProtocolErrorCode.BadPrekey)).toBe(true);
  });

  it('a tampered copy delivered before the genuine message is reported, does not shadow it, and forces no reset', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    const b0 = await open(bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await a.client.send(b0.client.address, 'one');
    await until('one', () => b0.messages.length === 1);
    await b0.client.send(a.client.address, 'answer'); // A's next messages are plain ratchet messages
    await until('answer and receipts', () => a.messages.length === 1 && b0.delivered.length === 1);
    await until('drained', () => relay.mailCount() === 0);
    await b0.client.close();

    const { id } = await a.client.send(b0.client.address, 'two');
    const box = relay.mailboxes.get(b0.client.address)!;
    const genuine = box[0]!;
    const tampered = genuine.envelope.slice();
    tampered[tampered.length - 1]! ^= 0x01;
    box.unshift({ ...genuine, envelope: tampered, seq: genuine.seq - 0.5 }); // paged first, same id
    const claimsBefore = relay.events.filter((e) => e === 'prekeys:claim').length;

    const b = await open(bStore);
    await b.client.connect();
    await until('two', () => b.messages.length === 1);
    expect(texts(b)).toEqual(['two']);
    expect(b.messages[0]!.id).toBe(id);
    expect(b.errors.map((e) => [e.code, e.messageId])).toEqual([[ClientErrorCode.DecryptFailed, id]]);
    await new Promise((r) => setTimeout(r, 100));
    expect(relay.events.filter((e) => e === 'prekeys:claim').length).toBe(claimsBefore);
  });

  it('keeps mail more than MAX_SKIP ahead (TOO_LARGE) at the relay instead of acking it, and delivers it once the mail before it arrived', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    const b0 = await open(bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await a.client.send(b0.client.address, 'hello');
    await until('hello', () => b0.messages.length === 1);
    await b0.client.send(a.client.address, 'hi'); // A's next messages are plain ratchet messages
    await until('drained', async () => a.messages.length === 1 && relay.mailCount() === 0);
    await b0.client.close();

    const n = 1_002; // the last one is 1,001 ahead of the first: past MAX_SKIP (1,000)
    const sent: string[] = [];
    for (let i = 0; i < n; i += 200) {
      const chunk = Array.from({ length: Math.min(200, n - i) }, (_, j) => `m${i + j}`);
      const ids = await Promise.all(chunk.map((t) => a.client.send(b0.client.address, t)));
      sent.push(...ids.map((r) => r.id));
    }
    // The relay pages the newest message first (a relay that reorders, or a push ahead of a backlog).
    const box = relay.mailboxes.get(b0.client.address)!;
    const last = box.pop()!;
    box.unshift({ ...last, seq: box[0]!.seq - 1, cursor: String(box[0]!.seq - 1) });

    const b = await open(bStore);
    await b.client.connect();
    await until('all delivered', () => b.messages.length === n, 60_000);
    expect(texts(b)).toEqual(['hello', ...Array.from({ length: n }, (_, i) => `m${i}`)].slice(1));
    expect(new Set(b.messages.map((m) => m.id)).size).toBe(n);
    // Reported once as pending (not acked, so not lost), never as failed.
    expect(b.errors.map((e) => [e.code, e.messageId])).toEqual([
      [ClientErrorCode.DecryptPending, sent[n - 1]],
    ]);
    expect((b.errors[0]!.cause as ProtocolError).code).toBe(ProtocolErrorCode.TooLarge);
    await until('mailbox empty', () => relay.mailCount(b.client.address) === 0);
  }, 120_000);

  it('fetches at once when a conversation has a gap, so mail stored but never pushed is not left to the periodic fetch', async () => {
    const a = await open();
    const b = await open(undefined, { reorderTimeoutMs: 60_000, fetchIntervalMs: 60_000 });
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'm0');
    await until('m0', () => b.messages.length === 1);
    const fetchesBefore = relay.events.filter((e) => e === 'fetch').length;
    relay.suppressPushes = 1; // m1 is stored, and only a fetch will find it
    await a.client.send(b.client.address, 'm1');
    await a.client.send(b.client.address, 'm2');
    await until('m1 and m2', () => b.messages.length === 3);
    expect(texts(b)).toEqual(['m0', 'm1', 'm2']);
    expect(b.messages.map((m) => [m.late, m.skippedBefore])).toEqual([
      [false, 0],
      [false, 0],
      [false, 0],
    ]);
    expect(relay.events.filter((e) => e === 'fetch').length).toBeGreaterThan(fetchesBefore);
    expect(b.errors).toEqual([]);
  });

  it('gives up a gap the relay never fills after reorderTimeoutMs and says so (skippedBefore), then keeps order', async () => {
    const a = await open();
    const bStore = new MemoryStore();
    const b0 = await open(bStore);
    await Promise.all([a.client.connect(), b0.client.connect()]);
    await b0.client.close();
    for (const t of ['m0', 'm1', 'm2', 'm3']) await a.client.send(b0.client.address, t);
    const box = relay.mailboxes.get(b0.client.address)!;
    box.splice(1, 1); // the relay loses m1
    const b = await open(bStore, { reorderTimeoutMs: 200 });
    await b.client.connect();
    await until('three', () => b.messages.length === 3);
    expect(b.messages.map((m) => [m.kind === 'text' && m.text, m.sequence, m.skippedBefore, m.late])).toEqual(
      [
        ['m0', 0, 0, false],
        ['m2', 2, 1, false],
        ['m3', 3, 0, false],
      ],
    );
  });

  it('rejects a send with EXPIRED when its outbox entry outlives ttlMs before the relay stored it', async () => {
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    relay.clock = clock;
    const a = await open(new MemoryStore(), { clock, outbox: { ttlMs: 60_000 } });
    const b = await open();
    await Promise.all([a.client.connect(), b.client.connect()]);
    await a.client.send(b.client.address, 'in time');
    await relay.stop();
    await until('A down', () => !a.client.connected);
    const late = a.client.send(b.client.address, 'too late').catch((e: unknown) => e);
    await until('queued', async () => (await a.store.list('outbox/m/')).length === 1);
    offset = 2 * 60_000; // both clocks move on: the entry is past its expiry
    await relay.start();
    const err = await late;
    expect(ClientError.is(err, ClientErrorCode.Expired)).toBe(true);
    expect(a.errors.some((e) => e.code === ClientErrorCode.Expired && e.peer === b.client.address)).toBe(
      true,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(texts(b)).toEqual(['in time']);
  });

  it('rotates the signed and last-resort KEM prekeys once older than signedPrekeyMaxAgeMs; sessions on the old ones go on', async () => {
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    relay.clock = clock;
    const bStore = new MemoryStore();
    const a = await open(new MemoryStore(), { clock });
    const b0 = await open(bStore, { clock });
    await Promise.all([a.client.connect(), b0.client.connect()]);
    const before = relay.prekeys.get(b0.client.address)!;
    const [signed0, kem0] = [before.signed!.id, before.kem!.id];
    await a.client.send(b0.client.address, 'before rotation'); // set up on the old signed prekey
    await until('before', () => b0.messages.length === 1);
    await until('acked', () => relay.mailCount(b0.client.address) === 0);
    await b0.client.close();
    offset = 8 * 24 * 60 * 60 * 1000;
    const b = await open(bStore, { clock });
    await b.client.connect();
    const after = relay.prekeys.get(b.client.address)!;
    expect(after.signed!.id).not.toBe(signed0);
    expect(after.kem!.id).not.toBe(kem0);
    // A still repeats its old prekey header (B has not answered): B kept the old prekeys.
    await a.client.send(b.client.address, 'after rotation');
    // C's first message uses the new bundle.
    const c = await open(new MemoryStore(), { clock });
    await c.client.connect();
    await c.client.send(b.client.address, 'new bundle');
    await until('both', () => b.messages.length === 2);
    expect(texts(b).sort()).toEqual(['after rotation', 'new bundle']);
    expect(b.errors).toEqual([]);
  });
  it('hands a message of a kind it does not know over in order as `unsupported`: it takes its sequence number, no gap', async () => {
    const aStore = new MemoryStore();
    const a0 = await open(aStore);
    // A reorder timeout far beyond the test's: a gap would hang it.
    const b = await open(undefined, { reorderTimeoutMs: 600_000 });
    const order: string[] = [];
    const unsupported: UnsupportedMessage[] = [];
    b.client.on('message', (m) => void order.push(m.kind === 'text' ? m.text : 'bytes'));
    b.client.on('unsupported', (m) => {
      unsupported.push(m);
      order.push(`unsupported kind ${m.kind}`);
    });
    await Promise.all([a0.client.connect(), b.client.connect()]);
    const before = await a0.client.send(b.client.address, 'before');
    await until('before', () => b.messages.length === 1);
    await a0.client.close();

    // A newer version of A sends a kind this one does not know, queued the way `send` does it.
    const peer = b.client.address;
    const { id: unknownId, sentAt } = await queueUnknownKind(aStore, peer, 200);

    const a = await open(aStore);
    await a.client.connect();
    const after = await a.client.send(peer, 'after');
    await until('after', () => b.messages.length === 2);
    expect(order).toEqual(['before', 'unsupported kind 200', 'after']);
    expect(unsupported).toEqual([
      {
        from: a.client.address,
        id: unknownId,
        kind: 200,
        sequence: 1,
        sentAt,
        receivedAt: expect.any(Number),
        late: false,
        skippedBefore: 0,
      },
    ]);
    expect(b.messages.map((m) => [m.sequence, m.late, m.skippedBefore])).toEqual([
      [0, false, 0],
      [2, false, 0],
    ]);
    await until('inbox emptied', async () => (await b.store.list('inbox/')).length === 0);
    await until('receipts for both texts', () => a.delivered.includes(after.id));
    expect([...a0.delivered, ...a.delivered].sort()).toEqual([before.id, after.id].sort());
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('fetches when the relay says stored mail was not pushed (mail:sync)', async () => {
    const a = await open();
    const b = await open(undefined, { fetchIntervalMs: 600_000 });
    await Promise.all([a.client.connect(), b.client.connect()]);
    relay.suppressPushes = 1;
    await a.client.send(b.client.address, 'withheld');
    await new Promise((r) => setTimeout(r, 100));
    expect(b.messages).toEqual([]);
    relay.syncPush(b.client.address);
    await until('withheld', () => b.messages.length === 1);
    expect(texts(b)).toEqual(['withheld']);
  });
});
