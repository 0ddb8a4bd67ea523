/**
 * Two clients exchange envelopes through one relay node: live (pushed to an online recipient) and
 * offline (stored, fetched on connect oldest first, deleted on ack), with the rows counted in
 * PostgreSQL at each step.
 */
import { formatMessageId, peekEnvelopeRoute } from '@usm/protocol';
import type pg from 'pg';
import { usePostgres } from '../../../test/support/postgres.js';
import {
  type RelayNode,
  authenticate,
  client,
  closeAll,
  connect,
  disconnected,
  envelopeTo,
  next,
  ok,
  request,
  startRelay,
} from './relay-client.js';

describe('relay gateway: two clients exchange envelopes', () => {
  let node: RelayNode;
  let db: pg.Client;
  // Declared before usePostgres: after-all hooks run in declaration order, the node before the database.
  afterAll(() => node?.close());
  const pg = usePostgres();
  beforeAll(async () => {
    node = await startRelay(pg.url, { socket: { adapter: 'none' } });
    db = await pg.client();
  });

  const rows = async (recipient: string): Promise<number> =>
    (
      await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, [
        recipient,
      ])
    ).rows[0]!.n;

  it('live: the recipient gets a mail push after the store committed, stamped with the sender, and acks it away', async () => {
    const alice = await client(node.url);
    const bob = await client(node.url);
    try {
      const envelope = envelopeTo(bob.address);
      const pushed = next(bob.socket, 'mail');
      const sent = ok(await request(alice.socket, 'send', { envelopes: [envelope] }));
      const id = formatMessageId(peekEnvelopeRoute(envelope).id);
      expect(sent.results).toEqual([{ status: 'stored', id }]);
      // The ack came after the commit: the row is there.
      expect(await rows(bob.address)).toBe(1);

      const push = await pushed;
      expect(push.mail).toHaveLength(1);
      expect(new Uint8Array(push.mail[0]!.envelope)).toEqual(envelope);
      expect(push.mail[0]!.sender).toBe(alice.address);
      const stamped = await db.query<{ sender: string; t: string }>(
        `SELECT sender, (extract(epoch from created_at) * 1000)::bigint::text AS t FROM usm_mail WHERE recipient = $1`,
        [bob.address],
      );
      expect(stamped.rows[0]!.sender).toBe(alice.address);
      expect(push.mail[0]!.receivedAt).toBe(Number(stamped.rows[0]!.t));

      expect(ok(await request(bob.socket, 'ack', { ids: [id] }))).toEqual({ status: 'ok', deleted: 1 });
      expect(await rows(bob.address)).toBe(0);
      // Acking again deletes nothing.
      expect(ok(await request(bob.socket, 'ack', { ids: [id] }))).toEqual({ status: 'ok', deleted: 0 });
    } finally {
      closeAll(alice.socket, bob.socket);
    }
  });

  it('offline: stored while the recipient is away, fetched oldest first on connect, deleted on ack; a retried send is a duplicate', async () => {
    const alice = await client(node.url);
    const bob = await client(node.url);
    const gone = disconnected(bob.socket);
    bob.socket.close();
    await gone;
    try {
      const envelopes = [
        envelopeTo(bob.address, 16),
        envelopeTo(bob.address, 100),
        envelopeTo(bob.address, 1000),
      ];
      const ids = envelopes.map((e) => formatMessageId(peekEnvelopeRoute(e).id));
      for (const e of envelopes) ok(await request(alice.socket, 'send', { envelopes: [e] }));
      const retry = ok(await request(alice.socket, 'send', { envelopes: [envelopes[1]!] }));
      expect(retry.results).toEqual([{ status: 'duplicate', id: ids[1] }]);
      expect(await rows(bob.address)).toBe(3);

      // Bob comes back: paged fetch, oldest first, then ack.
      const socket = await connect(node.url);
      bob.socket = socket;
      expect(await authenticate(socket, bob.identity)).toBe(bob.address);
      const first = ok(await request(socket, 'fetch', { limit: 2 }));
      expect(first.mail.map((m) => new Uint8Array(m.envelope))).toEqual(envelopes.slice(0, 2));
      expect(first.mail.map((m) => m.sender)).toEqual([alice.address, alice.address]);
      expect(first.cursor).not.toBeNull();
      const second = ok(await request(socket, 'fetch', { cursor: first.cursor!, limit: 2 }));
      expect(second.mail.map((m) => new Uint8Array(m.envelope))).toEqual(envelopes.slice(2));
      expect(second.cursor).toBeNull();
      // Fetching does not delete: only an ack does.
      expect(await rows(bob.address)).toBe(3);

      expect(ok(await request(socket, 'ack', { ids }))).toEqual({ status: 'ok', deleted: 3 });
      expect(await rows(bob.address)).toBe(0);
      expect(ok(await request(socket, 'fetch', {}))).toEqual({ status: 'ok', mail: [], cursor: null });
    } finally {
      closeAll(alice.socket, bob.socket);
    }
  });

  it('a batch to several recipients: one result per envelope in order, each recipient pushed its own mail', async () => {
    const alice = await client(node.url);
    const bob = await client(node.url);
    const carol = await client(node.url);
    try {
      const toBob = [envelopeTo(bob.address), envelopeTo(bob.address)];
      const toCarol = envelopeTo(carol.address);
      const bobPush = next(bob.socket, 'mail');
      const carolPush = next(carol.socket, 'mail');
      const sent = ok(await request(alice.socket, 'send', { envelopes: [toBob[0]!, toCarol, toBob[1]!] }));
      expect(sent.results.map((r) => r.status)).toEqual(['stored', 'stored', 'stored']);
      expect((await bobPush).mail.map((m) => new Uint8Array(m.envelope))).toEqual(toBob);
      expect((await carolPush).mail.map((m) => new Uint8Array(m.envelope))).toEqual([toCarol]);
      expect(await rows(bob.address)).toBe(2);
      expect(await rows(carol.address)).toBe(1);
    } finally {
      closeAll(alice.socket, bob.socket, carol.socket);
    }
  });
});
