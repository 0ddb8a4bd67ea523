import { MAX_ENVELOPES_PER_SEND, MAX_FETCH_PAGE } from '@usm/protocol';
import type { DataSource } from 'typeorm';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import type { OutgoingEnvelope } from '../src/mail/message-store.interface.js';
import { PostgresMessageStore } from '../src/mail/message-store.service.js';
import { MAX_STORE_CURSOR } from '../src/mail/store-cursor.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import { RelayError, RelayErrorCode } from '../src/relay.errors.js';
import { RELAY_MESSAGES as M } from '../src/relay.messages.js';
import { address, kit, messageId, type Kit } from './fixtures.js';

const DAY = 24 * 60 * 60 * 1000;

describe('PostgresMessageStore', () => {
  const pg = usePostgres();
  let ds: DataSource;
  let k: Kit;
  let store: PostgresMessageStore;

  beforeAll(async () => {
    ds = await pg.dataSource();
    await runMigrations(ds);
    k = kit(ds, pg.url, { mail: { quotaPerRecipient: 5, maxFetchPage: 10, maxNoticeCursors: 10 } });
    store = new PostgresMessageStore(k.db, k.options, k.clock, k.metrics);
  });

  const env = (recipient: string, text: string, id = messageId()): OutgoingEnvelope => ({
    recipient,
    messageId: id,
    envelope: new TextEncoder().encode(text),
  });

  it('stores idempotently: a retried batch (and a repeat inside one batch) is a duplicate, never a second row', async () => {
    const alice = address('alice');
    const bob = address('bob');
    const first = env(bob, 'c1');
    const second = env(bob, 'c2');

    const r1 = await store.store(alice, [first, second, first]);
    expect(r1.map((r) => r.status)).toEqual(['stored', 'stored', 'duplicate']);
    const r2 = await store.store(alice, [second, first]);
    expect(r2.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    // Concurrent retries of one message: exactly one store.
    const third = env(bob, 'c3');
    const racing = await Promise.all(Array.from({ length: 8 }, () => store.store(alice, [third])));
    expect(racing.flat().filter((r) => r.status === 'stored')).toHaveLength(1);

    expect(await store.pendingCount(bob)).toBe(3);
    const c = await pg.client();
    const rows = await c.query(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, [bob]);
    expect(rows.rows[0].n).toBe(3);
  });

  it('the same message id to two recipients is two messages', async () => {
    const alice = address('alice');
    const id = messageId();
    const res = await store.store(alice, [env(address('bob'), 'x', id), env(address('carol'), 'x', id)]);
    expect(res.map((r) => r.status)).toEqual(['stored', 'stored']);
  });

  it('fetches oldest first in pages on a stable cursor, with sender, times and exact bytes', async () => {
    const alice = address('alice');
    const bob = address('bob');
    const sent: OutgoingEnvelope[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const envs = [env(bob, `m${batch}a`), env(bob, `m${batch}b`)];
      sent.push(...envs);
      await store.store(alice, envs);
      k.clock.advance(1_000);
    }
    // Quota is 5: the 6th envelope was refused, so 5 are held.
    const held = sent.slice(0, 5);

    const page1 = await store.fetch(bob, null, 2);
    expect(page1.hasMore).toBe(true);
    const page2 = await store.fetch(bob, page1.cursor, 2);
    const page3 = await store.fetch(bob, page2.cursor, 2);
    expect(page3.hasMore).toBe(false);
    const all = [...page1.messages, ...page2.messages, ...page3.messages];
    expect(all.map((m) => new TextDecoder().decode(m.envelope))).toEqual(
      held.map((e) => new TextDecoder().decode(e.envelope)),
    );
    expect(all.map((m) => m.messageId)).toEqual(held.map((e) => e.messageId));
    expect(all.every((m) => m.sender === alice)).toBe(true);
    expect(all[0]?.expiresAt).toBe((all[0]?.createdAt ?? 0) + 30 * DAY);
    // An empty page keeps the cursor, so a client can poll from it.
    const empty = await store.fetch(bob, page3.cursor, 2);
    expect(empty).toEqual({ messages: [], cursor: page3.cursor, hasMore: false });
  });

  it('acks delete only the recipient own rows: another identity acking them deletes 0', async () => {
    const alice = address('alice');
    const bob = address('bob');
    const mallory = address('mallory');
    const envs = [env(bob, 'one'), env(bob, 'two')];
    await store.store(alice, envs);
    const ids = envs.map((e) => e.messageId);

    expect(await store.ack(mallory, ids)).toBe(0);
    expect(await store.ack(alice, ids)).toBe(0);
    expect(await store.pendingCount(bob)).toBe(2);

    expect(await store.ack(bob, [ids[0] as Uint8Array])).toBe(1);
    expect(await store.ack(bob, ids)).toBe(1);
    expect(await store.ack(bob, ids)).toBe(0);
    expect(await store.pendingCount(bob)).toBe(0);
  });

  it('enforces the per-recipient quota, also under concurrent stores, without blocking other recipients', async () => {
    const bob = address('bob');
    const carol = address('carol');
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.store(address('s'), [env(bob, `q${i}`)])),
    );
    const statuses = results.flat().map((r) => r.status);
    expect(statuses.filter((s) => s === 'stored')).toHaveLength(5);
    expect(statuses.filter((s) => s === 'rejected')).toHaveLength(7);
    const rejected = results.flat().find((r) => r.status === 'rejected');
    expect(rejected).toMatchObject({ code: RelayErrorCode.QuotaExceeded, message: M.quotaExceeded(5) });
    expect(await store.pendingCount(bob)).toBe(5);

    // A full mailbox refuses only its own envelopes; a retry of a stored one is still 'duplicate'.
    const stored = await store.fetch(bob, null, 1);
    const again = await store.store(address('s'), [
      env(carol, 'fine'),
      env(bob, 'full'),
      { ...env(bob, 'retry'), messageId: stored.messages[0]?.messageId as Uint8Array },
    ]);
    expect(again.map((r) => r.status)).toEqual(['stored', 'rejected', 'duplicate']);
  });

  it('overlaps group commits only on disjoint mailboxes, and keeps each mailbox in call order', async () => {
    // A store whose every statement is watched: which mailboxes each store statement carries and
    // which are in flight at the same time.
    const roomy = kit(ds, pg.url, { mail: { quotaPerRecipient: 10_000 } });
    let inFlight: string[][] = [];
    let mostAtOnce = 0;
    const shared: string[] = [];
    const db = Object.create(roomy.db) as typeof roomy.db;
    db.query = async (text, values) => {
      if (!text.includes('usm_store_mail')) return roomy.db.query(text, values);
      const mine = values?.[2] as string[];
      for (const other of inFlight) shared.push(...mine.filter((m) => other.includes(m)));
      inFlight = [...inFlight, mine];
      mostAtOnce = Math.max(mostAtOnce, inFlight.length);
      try {
        return await roomy.db.query(text, values);
      } finally {
        inFlight = inFlight.filter((x) => x !== mine);
      }
    };
    const watched = new PostgresMessageStore(db, roomy.options, roomy.clock, roomy.metrics);
    const mailboxes = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].map((m) => address(`order-${m}`));
    // 300 concurrent calls, each to one to three mailboxes; the envelope names the call.
    let seed = 7;
    const pick = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % mailboxes.length;
    const calls = Array.from({ length: 300 }, (_, i) => {
      const to = [...new Set([pick(), pick(), pick()].slice(0, 1 + (i % 3)))].map(
        (j) => mailboxes[j] as string,
      );
      return to.map((recipient) => env(recipient, String(i)));
    });
    const results = await Promise.all(calls.map((envelopes) => watched.store(address('s'), envelopes)));
    expect(results.flat().every((r) => r.status === 'stored')).toBe(true);

    expect(shared).toEqual([]);
    expect(mostAtOnce).toBeGreaterThan(1);
    for (const mailbox of mailboxes) {
      const expected = calls.flatMap((envelopes, i) =>
        envelopes.some((e) => e.recipient === mailbox) ? [i] : [],
      );
      const got: number[] = [];
      let cursor: string | null = null;
      for (;;) {
        const page = await watched.fetch(mailbox, cursor, MAX_FETCH_PAGE);
        got.push(...page.messages.map((m) => Number(new TextDecoder().decode(m.envelope))));
        cursor = page.cursor;
        if (!page.hasMore) break;
      }
      expect(got).toEqual(expected);
    }
  });

  it('reads stored mail back by its recipients and cursors, for a push from another node', async () => {
    // Its own store and metrics: the metrics test below counts what the others stored and acked.
    const own = kit(ds, pg.url, { mail: { quotaPerRecipient: 5, maxFetchPage: 10, maxNoticeCursors: 10 } });
    const store = new PostgresMessageStore(own.db, own.options, own.clock, own.metrics);
    const alice = address('alice');
    const [dora, erin] = [address('dora'), address('erin')];
    const sent = [env(dora, 'r1'), env(erin, 'r2'), env(dora, 'r3')];
    const res = await store.store(alice, sent);
    const cursors = res.map((r) => (r.status === 'stored' ? r.cursor : 'none'));
    expect(cursors.every((c) => /^[1-9][0-9]*$/.test(c))).toBe(true);

    const read = await store.read([dora, erin], cursors);
    // In cursor order (the store numbers a batch's rows mailbox by mailbox).
    const byCursor = (a: unknown[], b: unknown[]) => Number(a[0]) - Number(b[0]);
    expect(read.map((m) => [m.cursor, m.recipient, new TextDecoder().decode(m.envelope)])).toEqual(
      [
        [cursors[0], dora, 'r1'],
        [cursors[1], erin, 'r2'],
        [cursors[2], dora, 'r3'],
      ].sort(byCursor),
    );
    expect(read.every((m) => m.sender === alice)).toBe(true);
    // Only the named recipients' rows: erin's cursor under dora's name reads nothing.
    expect(await store.read([dora], [cursors[1] as string])).toEqual([]);
    // Acked mail is gone.
    await store.ack(dora, [sent[0]!.messageId]);
    expect((await store.read([dora, erin], cursors)).map((m) => m.cursor).sort()).toEqual(
      [cursors[1], cursors[2]].sort(),
    );

    const bad = async (fn: () => Promise<unknown>, message: string) => {
      const err = await fn().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RelayError);
      expect((err as RelayError).code).toBe(RelayErrorCode.InvalidInput);
      expect((err as RelayError).message).toBe(message);
    };
    await bad(() => store.read([dora], ['1; DROP TABLE usm_mail']), M.badCursor(MAX_STORE_CURSOR));
    await bad(
      () =>
        store.read(
          [dora],
          Array.from({ length: 11 }, (_, i) => String(i + 1)),
        ),
      M.readTooLarge('cursors', 11, 10),
    );
    await bad(
      () =>
        store.read(
          Array.from({ length: 11 }, () => dora),
          ['1'],
        ),
      M.readTooLarge('recipients', 11, 10),
    );
  });

  it('refuses a cursor above bigint in fetch and read with INVALID_INPUT, before any SQL; bigint max is accepted', async () => {
    /** Counts the statements the store sends. */
    class CountingDatabase extends RelayDatabase {
      statements = 0;
      override query<R>(text: string, values?: unknown[]) {
        this.statements++;
        return super.query<R>(text, values);
      }
    }
    const db = new CountingDatabase(ds);
    const store = new PostgresMessageStore(db, k.options, k.clock, k.metrics);
    const dora = address('dora');
    const refusal = new RelayError(RelayErrorCode.InvalidInput, M.badCursor(MAX_STORE_CURSOR));
    // 2^63 (one past bigint max) and the largest 19-digit number: both pass the digit pattern.
    for (const cursor of ['9223372036854775808', '9999999999999999999']) {
      const fetched = await store.fetch(dora, cursor).catch((e: unknown) => e);
      expect(fetched).toEqual(refusal);
      expect(RelayError.is(fetched, RelayErrorCode.InvalidInput)).toBe(true);
      const read = await store.read([dora], ['1', cursor]).catch((e: unknown) => e);
      expect(read).toEqual(refusal);
      expect(RelayError.is(read, RelayErrorCode.InvalidInput)).toBe(true);
      expect((read as RelayError).message).not.toContain(cursor);
    }
    expect(db.statements).toBe(0);
    // The largest cursor the store can hand out still reaches the database, and finds nothing.
    expect(await store.fetch(dora, MAX_STORE_CURSOR)).toEqual({
      messages: [],
      cursor: MAX_STORE_CURSOR,
      hasMore: false,
    });
    expect(await store.read([dora], [MAX_STORE_CURSOR])).toEqual([]);
    expect(db.statements).toBe(2);
  });

  it('keeps usm_mailbox_counts equal to each mailbox row count through stores, acks, concurrent calls and raw deletes', async () => {
    const roomy = kit(ds, pg.url, { mail: { quotaPerRecipient: 10_000 } });
    const s = new PostgresMessageStore(roomy.db, roomy.options, roomy.clock, roomy.metrics);
    const mailboxes = ['c1', 'c2', 'c3'].map((m) => address(`count-${m}`));
    const sent = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const envelopes = [
          env(mailboxes[i % 3] as string, `n${i}`),
          env(mailboxes[(i + 1) % 3] as string, `m${i}`),
        ];
        return s.store(address('s'), envelopes).then(() => envelopes);
      }),
    );
    // Acks racing more stores, and a retry of everything (duplicates add nothing).
    await Promise.all([
      ...sent.slice(0, 30).map((envelopes) => s.ack(envelopes[0]!.recipient, [envelopes[0]!.messageId])),
      ...sent.slice(30).map((envelopes) => s.store(address('s'), envelopes)),
    ]);
    const c = await pg.client();
    await c.query(`DELETE FROM usm_mail WHERE recipient = $1 AND envelope = $2`, [
      mailboxes[2],
      Buffer.from('n35'),
    ]);
    const { rows } = await c.query<{ recipient: string; held: number; n: number }>(
      `SELECT m.recipient, c.held::int AS held, count(*)::int AS n
         FROM usm_mail AS m JOIN usm_mailbox_counts AS c USING (recipient)
        WHERE m.recipient = ANY($1) GROUP BY m.recipient, c.held ORDER BY m.recipient`,
      [mailboxes],
    );
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r.held).toBe(r.n);
    expect(rows.reduce((n, r) => n + r.n, 0)).toBe(120 - 30 - 1);
  });

  it('hides expired mail from fetch and pendingCount (injected clock, no sleeping)', async () => {
    const bob = address('bob');
    await store.store(address('alice'), [{ ...env(bob, 'short'), ttlMs: 60_000 }, env(bob, 'long')]);
    expect(await store.pendingCount(bob)).toBe(2);
    k.clock.advance(60_001);
    expect(await store.pendingCount(bob)).toBe(1);
    const page = await store.fetch(bob);
    expect(page.messages.map((m) => new TextDecoder().decode(m.envelope))).toEqual(['long']);
    // A TTL above the relay's maximum is capped to it.
    const capped = await store.store(address('alice'), [{ ...env(bob, 'x'), ttlMs: 365 * DAY }]);
    expect(capped[0]).toMatchObject({ status: 'stored', expiresAt: k.clock.now() + 30 * DAY });
  });

  it('refuses bad input with INVALID_INPUT and a message that says what is wrong', async () => {
    const bob = address('bob');
    const bad = (fn: () => Promise<unknown>, message: string) =>
      expect(fn()).rejects.toThrow(new RelayError(RelayErrorCode.InvalidInput, message));
    await bad(
      () => store.store('a', [{ ...env(bob, 'x'), messageId: new Uint8Array(15) }]),
      M.badMessageId(0, 15, 16),
    );
    await bad(
      () => store.store('a', [env(bob, 'x'), { ...env(bob, 'x'), envelope: new Uint8Array(65_594) }]),
      M.envelopeTooLarge(1, 65_594, 65_593),
    );
    await bad(
      () =>
        store.store(
          'a',
          Array.from({ length: 101 }, () => env(bob, 'x')),
        ),
      M.batchTooLarge(101, MAX_ENVELOPES_PER_SEND),
    );
    await bad(() => store.store('', [env(bob, 'x')]), M.badAddress('sender', 0, 256));
    await bad(() => store.fetch(bob, 'not-a-cursor'), M.badCursor(MAX_STORE_CURSOR));
    await bad(() => store.fetch(bob, null, 11), M.badLimit(10));
    await bad(() => store.ack(bob, [new Uint8Array(3)]), M.badMessageId(0, 3, 16));
    const err = await store.fetch(bob, '1; DROP TABLE usm_mail').catch((e: unknown) => e);
    expect(RelayError.is(err, RelayErrorCode.InvalidInput)).toBe(true);
  });

  it('counts stored, duplicate, rejected and acked messages in its metrics', async () => {
    const text = await k.metrics.metrics();
    expect(text).toMatch(/usm_relay_messages_total\{event="stored"\} [1-9]/);
    expect(text).toMatch(/usm_relay_messages_total\{event="duplicate"\} [1-9]/);
    expect(text).toMatch(/usm_relay_messages_total\{event="rejected"\} [1-9]/);
    expect(text).toMatch(/usm_relay_messages_total\{event="acked"\} 2/);
    expect(text).toMatch(/usm_relay_store_duration_seconds_count\{operation="store"\} [1-9]/);
  });
});
