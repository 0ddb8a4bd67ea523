/**
 * Delivery receipts end to end: MessengerClient (libs/client) over real socket.io to the real relay
 * module (libs/relay) on a real PostgreSQL (test/support/postgres.ts). No fakes on the path.
 *
 * The flow of test/e2e/zero-knowledge.spec.ts: Bob publishes his prekeys and closes his client;
 * Alice sends 21 messages while he is away; Bob opens a NEW client on the same MemoryStore in the
 * same process and reads them. Alice listens for `delivered` only (a sender that shows ticks and
 * no incoming messages): she must still get every receipt.
 *
 * Waits are on the clients' events; the deadline only turns a hang into a readable failure.
 */
import type { INestApplication } from '@nestjs/common';
import { generateIdentityKeyPair, ready, toHex } from '@usm/crypto';
import { type ClientError, type IncomingMessage, MemoryStore, MessengerClient } from '@usm/client';
import { startInProcessRelay } from '../support/in-process-relay.js';
import { usePostgres } from '../support/postgres.js';

await ready();
const RELAY_IDENTITY = generateIdentityKeyPair();
const RELAY_KEY_HEX = toHex(RELAY_IDENTITY.publicKey.bytes);

/** Bounds a wait on events, so a missing event fails with `what` instead of jest's timeout. */
const DEADLINE_MS = 30_000;

/** Collects one event's payloads; `atLeast(n)` resolves once n arrived (rejects at the deadline). */
class Collector<T> {
  readonly items: T[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];

  readonly add = (item: T): void => {
    this.items.push(item);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.items.length < w.n) return true;
      w.resolve();
      return false;
    });
  };

  atLeast(n: number, what: string): Promise<void> {
    if (this.items.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${what}: ${this.items.length} of ${n} after ${DEADLINE_MS} ms`));
      }, DEADLINE_MS);
      this.#waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

describe('delivery receipts (real relay, real PostgreSQL, real socket.io)', () => {
  const pg = usePostgres();
  let app: INestApplication;
  let url = '';
  const clients: MessengerClient[] = [];

  beforeAll(async () => {
    ({ app, url } = await startInProcessRelay({ databaseUrl: pg.url, identity: RELAY_IDENTITY }));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await app.close();
  });

  const open = async (store: MemoryStore, errors: ClientError[]) => {
    const client = await MessengerClient.open({
      relayUrl: url,
      relayIdentityKey: RELAY_KEY_HEX,
      store,
      backoff: { baseMs: 50, capMs: 500 },
    });
    clients.push(client);
    client.on('error', (e) => void errors.push(e));
    return client;
  };

  /** Bob publishes his prekeys and goes away; Alice sends 20 texts and one byte string. */
  async function aliceWritesWhileBobIsAway(errors: ClientError[]) {
    const alice = await open(new MemoryStore(), errors);
    const delivered = new Collector<{ to: string; id: string }>();
    alice.on('delivered', delivered.add);
    const bobStore = new MemoryStore();
    const bob = await open(bobStore, errors);
    await bob.connect();
    await bob.close();
    await alice.connect();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await alice.send(bob.address, `hello #${i}`)).id);
    ids.push((await alice.send(bob.address, new Uint8Array([1, 2, 3]))).id);
    return { alice, delivered, bobStore, bobAddress: bob.address, ids };
  }

  it('Bob reopened on the same store reads all 21: Alice, listening for `delivered` only, gets all 21 receipts', async () => {
    const errors: ClientError[] = [];
    const { delivered, bobStore, bobAddress, ids } = await aliceWritesWhileBobIsAway(errors);

    const bobAgain = await open(bobStore, errors);
    const got = new Collector<IncomingMessage>();
    bobAgain.on('message', got.add);
    await bobAgain.connect();
    await got.atLeast(ids.length, 'messages Bob read');
    expect(got.items.map((m) => m.id)).toEqual(ids);

    await delivered.atLeast(ids.length, 'receipts Alice got');
    expect(new Set(delivered.items.map((r) => r.id))).toEqual(new Set(ids));
    expect(delivered.items).toHaveLength(ids.length);
    expect(delivered.items.every((r) => r.to === bobAddress)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('receipts are not held behind a message that waits for a `message` listener; the message still comes, once, when one is added', async () => {
    const errors: ClientError[] = [];
    const { alice, delivered, bobStore, bobAddress, ids } = await aliceWritesWhileBobIsAway(errors);

    const bobAgain = await open(bobStore, errors);
    const got = new Collector<IncomingMessage>();
    bobAgain.on('message', got.add);
    await bobAgain.connect();
    await got.atLeast(ids.length, 'messages Bob read');
    const reply = await bobAgain.send(alice.address, 'got them');
    // Read after the reply was stored: their receipts follow it in Bob's sequence, so on Alice's
    // side they sit behind a message that no listener has taken yet.
    for (let i = 0; i < 3; i++) ids.push((await alice.send(bobAddress, `after the reply #${i}`)).id);
    await got.atLeast(ids.length, 'messages Bob read');

    await delivered.atLeast(ids.length, 'receipts Alice got while she has no message listener');
    expect(new Set(delivered.items.map((r) => r.id))).toEqual(new Set(ids));

    const aliceGot = new Collector<IncomingMessage>();
    alice.on('message', aliceGot.add);
    await aliceGot.atLeast(1, 'the reply Alice got once she listens');
    expect(aliceGot.items.map((m) => [m.id, m.kind === 'text' ? m.text : '<bytes>'])).toEqual([
      [reply.id, 'got them'],
    ]);
    expect(delivered.items).toHaveLength(ids.length);
    expect(errors).toEqual([]);
  });
});
