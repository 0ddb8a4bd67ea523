/**
 * Authorization through the gateway: an identity reads, acks and deletes only its own mail,
 * publishes prekeys only for itself, and cannot send as another (the relay stamps the sender).
 * Every refusal is checked by its exact code and by the rows left in PostgreSQL.
 */
import { type MessageIdString, ProtocolErrorCode, formatMessageId, peekEnvelopeRoute } from '@usm/protocol';
import type pg from 'pg';
import { usePostgres } from '../../../test/support/postgres.js';
import { recordCase } from '../../../test/reliability/report.js';
import {
  type Client,
  type RelayNode,
  client,
  closeAll,
  envelopeTo,
  failed,
  next,
  ok,
  raw,
  request,
  startRelay,
} from './relay-client.js';

describe('relay gateway: authorization', () => {
  let node: RelayNode;
  let db: pg.Client;
  let alice: Client;
  let bob: Client;
  let mallory: Client;
  let bobIds: MessageIdString[];
  afterAll(async () => {
    closeAll(alice?.socket, bob?.socket, mallory?.socket);
    await node?.close();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    node = await startRelay(pg.url, { socket: { adapter: 'none' }, prekeys: { lowWaterMark: 2 } });
    db = await pg.client();
    [alice, bob, mallory] = await Promise.all([client(node.url), client(node.url), client(node.url)]);
    const envelopes = [envelopeTo(bob.address), envelopeTo(bob.address)];
    bobIds = envelopes.map((e) => formatMessageId(peekEnvelopeRoute(e).id));
    ok(await request(alice.socket, 'send', { envelopes }));
  });

  const count = async (sql: string, ...params: unknown[]): Promise<number> =>
    (await db.query<{ n: number }>(sql, params)).rows[0]!.n;
  const bobsMail = () => count(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, bob.address);

  it("fetches nothing of another identity's mail, whatever the payload names", async () => {
    expect(ok(await request(mallory.socket, 'fetch', {}))).toEqual({ status: 'ok', mail: [], cursor: null });
    expect(ok(await request(mallory.socket, 'fetch', { cursor: '0', limit: 50 }))).toEqual({
      status: 'ok',
      mail: [],
      cursor: null,
    });
    for (const payload of [
      { address: bob.address },
      { recipient: bob.address },
      { cursor: '0', mailbox: `mailbox:${bob.address}` },
    ]) {
      const reply = failed((await raw(mallory.socket, 'fetch', payload)) as never);
      expect(reply.code).toBe(ProtocolErrorCode.Malformed);
      expect(reply.message).toBe(
        `fetch: unexpected field "${Object.keys(payload).find((k) => k !== 'cursor')}"`,
      );
    }
    for (const cursor of ['*', '%', bob.address]) {
      const reply = failed((await raw(mallory.socket, 'fetch', { cursor })) as never);
      expect(reply.code).toBe(ProtocolErrorCode.Malformed);
    }
    const left = await bobsMail();
    recordCase({
      id: 'A1',
      title: "With B's address, mailbox name, cursors or wildcards, A fetches nothing of B's",
      figures: {
        'fetches tried': 8,
        "B's mail returned": 0,
        'refused (MALFORMED)': 6,
        "B's rows after": left,
      },
      outcome: left === 2 ? 'pass' : 'fail',
    });
    expect(left).toBe(2);
  });

  it("acks and deletes nothing of another identity's mail, with its ids, arrays, objects or wildcards", async () => {
    expect(ok(await request(mallory.socket, 'ack', { ids: bobIds }))).toEqual({ status: 'ok', deleted: 0 });
    const attempts: [unknown, string][] = [
      [{ ids: ['*'] }, 'ack.ids[0]'],
      [{ ids: [bobIds] }, 'ack.ids[0]: expected a string, got an array'],
      [{ ids: [{ recipient: bob.address, id: bobIds[0] }] }, 'ack.ids[0]: expected a string, got an object'],
      [{ ids: bobIds, recipient: bob.address }, 'ack: unexpected field "recipient"'],
      [{ ids: '%' }, 'ack.ids: expected an array, got a string'],
    ];
    for (const [payload, message] of attempts) {
      const reply = failed((await raw(mallory.socket, 'ack', payload)) as never);
      expect(reply.code).toBe(ProtocolErrorCode.Malformed);
      expect(reply.message.startsWith(message)).toBe(true);
    }
    const afterAttempts = await bobsMail();
    recordCase({
      id: 'A2',
      title: "With B's ids, arrays, objects or wildcards, A acks and deletes nothing of B's (rows counted)",
      figures: {
        'acks tried': attempts.length + 1,
        'deleted by A': 0,
        "B's rows before": 2,
        "B's rows after": afterAttempts,
      },
      outcome: afterAttempts === 2 ? 'pass' : 'fail',
    });
    expect(afterAttempts).toBe(2);
    // Bob still gets both, and only his own ack deletes them.
    const fetched = ok(await request(bob.socket, 'fetch', {}));
    expect(fetched.mail).toHaveLength(2);
    expect(ok(await request(bob.socket, 'ack', { ids: bobIds }))).toEqual({ status: 'ok', deleted: 2 });
    expect(await bobsMail()).toBe(0);
  });

  it('cannot send as another identity: the relay stamps the authenticated sender', async () => {
    const envelope = envelopeTo(alice.address);
    const forged = failed(
      (await raw(mallory.socket, 'send', { envelopes: [envelope], sender: bob.address })) as never,
    );
    expect(forged).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Malformed,
      message: 'send: unexpected field "sender"',
    });
    expect(await count(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, alice.address)).toBe(
      0,
    );

    const pushed = next(alice.socket, 'mail');
    ok(await request(mallory.socket, 'send', { envelopes: [envelope] }));
    expect((await pushed).mail[0]!.sender).toBe(mallory.address);
    expect(
      (
        await db.query<{ sender: string }>(`SELECT sender FROM usm_mail WHERE recipient = $1`, [
          alice.address,
        ])
      ).rows,
    ).toEqual([{ sender: mallory.address }]);
    expect(ok(await request(alice.socket, 'fetch', {})).mail.map((m) => m.sender)).toEqual([mallory.address]);
    recordCase({
      id: 'A3',
      title: 'A cannot send as B: a sender field is refused, the relay stamps the authenticated identity',
      figures: {
        "'sender' field": forged.code,
        'stamp on the push, the row and the fetch': 'the authenticated sender',
      },
      outcome: 'pass',
    });
  });

  it('publishes prekeys only for the authenticated identity; claims hand each one-time key out once and warn the owner when low', async () => {
    const record = (tag: number, size: number) => new Uint8Array(size).fill(tag);
    const published = ok(
      await request(bob.socket, 'prekeys:publish', {
        signedPrekey: { id: 1, record: record(1, 104) },
        kemPrekey: { id: 2, record: record(2, 1288) },
        oneTimePrekeys: [3, 4, 5].map((id) => ({ id, record: record(id, 40) })),
      }),
    );
    expect(published).toEqual({ status: 'ok', oneTimePrekeys: 3 });
    // Naming another address is an unexpected field, never a redirect.
    const forged = failed(
      (await raw(mallory.socket, 'prekeys:publish', {
        address: bob.address,
        oneTimePrekeys: [{ id: 9, record: record(9, 40) }],
      })) as never,
    );
    expect(forged).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Malformed,
      message: 'prekeys:publish: unexpected field "address"',
    });
    // Mallory's own first upload lacks the signed prekeys: refused, nothing written for anyone.
    const incomplete = failed(
      await request(mallory.socket, 'prekeys:publish', {
        oneTimePrekeys: [{ id: 9, record: record(9, 40) }],
      }),
    );
    expect(incomplete.code).toBe(ProtocolErrorCode.BadPrekey);
    expect(
      await count(`SELECT count(*)::int AS n FROM usm_one_time_prekeys WHERE address = $1`, bob.address),
    ).toBe(3);
    expect(
      await count(`SELECT count(*)::int AS n FROM usm_one_time_prekeys WHERE address = $1`, mallory.address),
    ).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM usm_prekeys`)).toBe(1);

    const low = next(bob.socket, 'prekeys:low');
    const bundles = [];
    for (let i = 0; i < 4; i++)
      bundles.push(ok(await request(alice.socket, 'prekeys:claim', { address: bob.address })).bundle);
    expect(bundles.map((b) => b.address)).toEqual([bob.address, bob.address, bob.address, bob.address]);
    expect(new Uint8Array(bundles[0]!.signedPrekey.record)).toEqual(record(1, 104));
    expect(bundles[0]!.kemPrekey.id).toBe(2);
    expect(bundles.map((b) => b.oneTimePrekey?.id ?? null)).toEqual([3, 4, 5, null]);
    expect(await low).toEqual({ remaining: 1, threshold: 2 });
    expect(ok(await request(bob.socket, 'prekeys:count', {}))).toEqual({
      status: 'ok',
      oneTimePrekeys: 0,
      hasSignedPrekey: true,
      hasKemPrekey: true,
    });
    const none = failed(await request(alice.socket, 'prekeys:claim', { address: mallory.address }));
    expect(none.code).toBe(ProtocolErrorCode.BadPrekey);
  });
});
