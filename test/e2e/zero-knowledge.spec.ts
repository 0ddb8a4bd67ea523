/**
 * Zero knowledge (issue #4): after a conversation with known plaintexts through the real client
 * crypto, no plaintext byte string appears anywhere in the relay's database or in its logs (every
 * level, verbose included). Real relay module, real PostgreSQL, real socket.io, real clients.
 *
 * The database is read whole: every table of the schema, every row as PostgreSQL's text form
 * (bytea as lowercase hex), searched for each plaintext's UTF-8 bytes both as text and as hex. A
 * positive control proves the scan sees stored ciphertext: the message ids the relay holds are
 * found by the same search.
 */
import type { INestApplication } from '@nestjs/common';
import { generateIdentityKeyPair, randomBytes, ready, toHex } from '@usm/crypto';
import { type IncomingMessage, MemoryStore, MessengerClient } from '@usm/client';
import { startInProcessRelay } from '../support/in-process-relay.js';
import { usePostgres } from '../support/postgres.js';
import { CapturingLogger } from '../support/capturing-logger.js';

await ready();
const RELAY_IDENTITY = generateIdentityKeyPair();
const RELAY_KEY_HEX = toHex(RELAY_IDENTITY.publicKey.bytes);

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('zero knowledge: the relay never holds a plaintext', () => {
  const pg = usePostgres();
  const logger = new CapturingLogger();
  let app: INestApplication;
  let url = '';
  const clients: MessengerClient[] = [];

  beforeAll(async () => {
    ({ app, url } = await startInProcessRelay({
      databaseUrl: pg.url,
      identity: RELAY_IDENTITY,
      logger,
      http: true,
    }));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await app.close();
  });

  /** Every row of every table in the relay's database, as text (bytea as \x hex). */
  async function databaseText(): Promise<string> {
    const db = await pg.client();
    const tables = await db.query<{ name: string }>(
      `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name
         FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    const parts: string[] = [];
    for (const { name } of tables.rows) {
      const rows = await db.query<{ row: string }>(`SELECT t::text AS row FROM ${name} t`);
      for (const r of rows.rows) parts.push(r.row);
    }
    return parts.join('\n').toLowerCase();
  }

  it('plaintexts appear in no table and no log line, while stored and after delivery', async () => {
    const open = async (store: MemoryStore) => {
      const client = await MessengerClient.open({
        relayUrl: url,
        relayIdentityKey: RELAY_KEY_HEX,
        store,
        backoff: { baseMs: 50, capMs: 500 },
      });
      clients.push(client);
      return client;
    };
    const alice = await open(new MemoryStore());
    const receipts = new Set<string>();
    alice.on('delivered', ({ id }) => void receipts.add(id)); // Alice listens for receipts only
    const bobStore = new MemoryStore();
    const bob = await open(bobStore);
    const bobAddress = bob.address;
    await bob.connect(); // publishes Bob's prekeys
    await bob.close(); // Bob goes offline: Alice's mail stays in the relay's store
    await alice.connect();

    const marker = toHex(randomBytes(8));
    const texts = Array.from(
      { length: 20 },
      (_, i) => `zero-knowledge plaintext ${marker} #${i} ${'x'.repeat(i * 7)}`,
    );
    const bytesBody = new TextEncoder().encode(`binary plaintext ${marker}`);
    const ids: string[] = [];
    for (const t of texts) ids.push((await alice.send(bobAddress, t)).id);
    ids.push((await alice.send(bobAddress, bytesBody)).id);

    const needles = [...texts, `binary plaintext ${marker}`, marker].flatMap((t) => {
      const utf8 = new TextEncoder().encode(t);
      return [t.toLowerCase(), toHex(utf8)];
    });
    const scan = (haystack: string) => needles.filter((n) => haystack.includes(n)).length;

    // While the mail is stored: the rows are there (the positive control finds their ids), the
    // plaintexts are not.
    const whileStored = await databaseText();
    const idsFound = ids.filter((id) => whileStored.includes(Buffer.from(id, 'base64url').toString('hex')));
    expect(idsFound.length).toBe(ids.length);
    expect(scan(whileStored)).toBe(0);

    // Bob comes back on the same store and reads everything; his acks delete the mail and his
    // encrypted receipts reach Alice's `delivered` listener (they pass the relay's store too).
    const bobAgain = await open(bobStore);
    const got: IncomingMessage[] = [];
    bobAgain.on('message', (m) => void got.push(m));
    await bobAgain.connect();
    await until('Bob reads all mail', () => got.length === ids.length);
    expect(got.map((m) => (m.kind === 'text' ? m.text : new TextDecoder().decode(m.bytes)))).toEqual([
      ...texts,
      `binary plaintext ${marker}`,
    ]);
    await until("Alice gets Bob's receipts", () => receipts.size === ids.length);
    expect([...receipts].sort()).toEqual([...ids].sort());
    expect(scan(await databaseText())).toBe(0);
    expect(logger.lines.length).toBeGreaterThan(0);
    expect(scan(logger.lines.join('\n').toLowerCase())).toBe(0);
  });
});
