/**
 * Two relay nodes (two Nest apps) on one database: a client on node A reaches a client on node B
 * live through the socket.io PostgreSQL adapter, and a handshake Init replayed to the other node
 * (or the same one) is refused with REPLAY before anything else happens on that socket.
 */
import { generateIdentityKeyPair } from '@usm/crypto';
import {
  HandshakeClient,
  MAX_FETCH_PAGE,
  ProtocolErrorCode,
  addressOf,
  formatAddress,
  formatMessageId,
  peekEnvelopeRoute,
} from '@usm/protocol';
import { usePostgres } from '../../../test/support/postgres.js';
import { RELAY_IDENTITY } from './fixtures.js';
import {
  type Client,
  type RelayNode,
  client,
  closeAll,
  connect,
  disconnected,
  envelopeTo,
  failed,
  next,
  ok,
  raw,
  request,
  startRelay,
} from './relay-client.js';

/** Waits until `node` sees `address` connected on another node: the adapters on both sides listen. */
async function seenAcrossNodes(node: RelayNode, address: string): Promise<void> {
  for (;;) {
    const sockets = await node.gateway.io!.fetchSockets();
    if (sockets.some((s) => s.data.address === address)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('relay gateway: two nodes on one database', () => {
  let a: RelayNode;
  let b: RelayNode;
  // Declared before usePostgres: after-all hooks run in declaration order, nodes before the database.
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    a = await startRelay(pg.url);
    b = await startRelay(pg.url);
  });

  /** Clients the current test opened, closed after it. */
  const opened: Client[] = [];
  afterEach(() => closeAll(...opened.splice(0).map((c) => c.socket)));
  const on = async (node: RelayNode, identity?: Parameters<typeof client>[1]): Promise<Client> => {
    const c = await client(node.url, identity);
    opened.push(c);
    return c;
  };

  it('a client on node A reaches a client on node B live, and back', async () => {
    const alice = await on(a);
    const bob = await on(b);
    await seenAcrossNodes(a, bob.address);
    await seenAcrossNodes(b, alice.address);

    const toBob = envelopeTo(bob.address, 4096);
    const pushedToBob = next(bob.socket, 'mail');
    const sent = ok(await request(alice.socket, 'send', { envelopes: [toBob] }));
    expect(sent.results).toEqual([{ status: 'stored', id: formatMessageId(peekEnvelopeRoute(toBob).id) }]);
    const push = await pushedToBob;
    expect(push.mail.map((m) => new Uint8Array(m.envelope))).toEqual([toBob]);
    expect(push.mail[0]!.sender).toBe(alice.address);

    const toAlice = envelopeTo(alice.address);
    const pushedToAlice = next(alice.socket, 'mail');
    ok(await request(bob.socket, 'send', { envelopes: [toAlice] }));
    expect((await pushedToAlice).mail.map((m) => m.sender)).toEqual([bob.address]);

    // Either node serves the mail from the shared store.
    const fetched = ok(await request(bob.socket, 'fetch', {}));
    expect(fetched.mail.map((m) => new Uint8Array(m.envelope))).toEqual([toBob]);
    const c = await pg.client();
    const rows = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM usm_mail`);
    expect(rows.rows[0]!.n).toBe(2);
    // The pushes crossed as `mail:available` notices: no ciphertext went through the adapter,
    // whose attachment table holds every binary broadcast.
    const attachments = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM socket_io_attachments`);
    expect(attachments.rows[0]!.n).toBe(0);
  });

  it("after a node's LISTEN connection is cut, mail stored meanwhile reaches its client: mail:sync (notices), then fetch", async () => {
    const alice = await on(a);
    const bob = await on(b);
    await seenAcrossNodes(a, bob.address);
    await seenAcrossNodes(b, alice.address);
    const c = await pg.client();
    // Every node's adapter keeps one connection whose last statement was its LISTEN.
    const cut = await c.query<{ pid: number }>(
      `SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`,
    );
    expect(cut.rows.length).toBeGreaterThanOrEqual(2);
    const synced = next(bob.socket, 'mail:sync');
    const syncedAlice = next(alice.socket, 'mail:sync'); // node A's LISTEN was cut too
    // Stored while node B is deaf: its notice reaches no listener on B.
    const toBob = envelopeTo(bob.address);
    const sent = ok(await request(alice.socket, 'send', { envelopes: [toBob] }));
    expect(sent.results[0]!.status).toBe('stored');
    expect(await synced).toEqual({ reason: 'notices' });
    const page = ok(await request(bob.socket, 'fetch', {}));
    expect(page.mail.map((m) => new Uint8Array(m.envelope))).toContainEqual(toBob);
    expect(await syncedAlice).toEqual({ reason: 'notices' });
    // Both adapters listen again (new backends), and live pushes cross once more.
    const listening = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`,
    );
    expect(listening.rows.map((r) => r.pid)).not.toContain(cut.rows[0]!.pid);
    const again = envelopeTo(bob.address);
    const pushed = next(bob.socket, 'mail');
    ok(await request(alice.socket, 'send', { envelopes: [again] }));
    expect((await pushed).mail.map((m) => new Uint8Array(m.envelope))).toEqual([again]);
    const back = envelopeTo(alice.address);
    const pushedBack = next(alice.socket, 'mail');
    ok(await request(bob.socket, 'send', { envelopes: [back] }));
    expect((await pushedBack).mail.map((m) => new Uint8Array(m.envelope))).toEqual([back]);
  });

  it('pushes 200 envelopes (four sends of 50) to a recipient on the other node, in order', async () => {
    const alice = await on(a);
    const bob = await on(b);
    await seenAcrossNodes(a, bob.address);
    const sent = Array.from({ length: 200 }, () => envelopeTo(bob.address));
    const got: Uint8Array[] = [];
    const all = new Promise<void>((resolve) =>
      bob.socket.on('mail', ({ mail }) => {
        got.push(...mail.map((m) => new Uint8Array(m.envelope)));
        if (got.length >= sent.length) resolve();
      }),
    );
    for (let i = 0; i < sent.length; i += 50) {
      const batch = sent.slice(i, i + 50);
      const r = ok(await request(alice.socket, 'send', { envelopes: batch }));
      expect(r.results.every((x) => x.status === 'stored')).toBe(true);
    }
    await all;
    expect(got).toEqual(sent);
  });

  it('treats a notice as a hint: pushes only rows still stored for recipients held here, ignores malformed ones', async () => {
    const alice = await on(a);
    const bob = await on(b);
    await seenAcrossNodes(a, bob.address);
    const c = await pg.client();
    const cursorOf = async (envelope: Uint8Array) =>
      (
        await c.query<{ seq: string }>(`SELECT seq::text AS seq FROM usm_mail WHERE message_id = $1`, [
          Buffer.from(peekEnvelopeRoute(envelope).id),
        ])
      ).rows[0]!.seq;

    const [first, second] = [envelopeTo(bob.address), envelopeTo(bob.address)];
    for (const envelope of [first, second]) {
      const pushed = next(bob.socket, 'mail');
      ok(await request(alice.socket, 'send', { envelopes: [envelope] }));
      expect((await pushed).mail.map((m) => new Uint8Array(m.envelope))).toEqual([envelope]);
    }
    const [c1, c2] = [await cursorOf(first), await cursorOf(second)];
    const acked = ok(
      await request(bob.socket, 'ack', { ids: [formatMessageId(peekEnvelopeRoute(first).id)] }),
    );
    expect(acked.deleted).toBe(1);

    // Node A tells node B about both rows (one acked since), plus garbage and a recipient B does not hold.
    const again = next(bob.socket, 'mail');
    a.gateway.io!.serverSideEmit('mail:available', [
      42,
      { recipient: bob.address },
      { recipient: alice.address, cursors: [c2] },
      { recipient: bob.address, cursors: [c1, c2] },
    ] as never);
    expect((await again).mail.map((m) => new Uint8Array(m.envelope))).toEqual([second]);
  });

  it('pushes the rows of a large notice as events of at most MAX_FETCH_PAGE items, in order', async () => {
    const alice = await on(a);
    const bobIdentity = generateIdentityKeyPair();
    const bobAddress = formatAddress(addressOf(bobIdentity.publicKey));
    // Stored while Bob is offline: no push.
    const sent = Array.from({ length: 120 }, () => envelopeTo(bobAddress));
    for (let i = 0; i < sent.length; i += 40) {
      ok(await request(alice.socket, 'send', { envelopes: sent.slice(i, i + 40) }));
    }
    const bob = await on(b, bobIdentity);
    await seenAcrossNodes(a, bob.address);
    const c = await pg.client();
    const { rows } = await c.query<{ seq: string }>(
      `SELECT seq::text AS seq FROM usm_mail WHERE recipient = $1 ORDER BY seq`,
      [bob.address],
    );
    expect(rows).toHaveLength(120);

    const sizes: number[] = [];
    const got: Uint8Array[] = [];
    const all = new Promise<void>((resolve) =>
      bob.socket.on('mail', ({ mail }) => {
        sizes.push(mail.length);
        got.push(...mail.map((m) => new Uint8Array(m.envelope)));
        if (got.length >= sent.length) resolve();
      }),
    );
    a.gateway.io!.serverSideEmit('mail:available', [
      { recipient: bob.address, cursors: rows.map((r) => r.seq) },
    ] as never);
    await all;
    expect(got).toEqual(sent);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_FETCH_PAGE);
  });

  it('refuses a handshake Init replayed to another node, and to the same node, with REPLAY, then closes the socket', async () => {
    const identity = generateIdentityKeyPair();
    const hs = new HandshakeClient({ identity, relayIdentity: RELAY_IDENTITY.publicKey });
    const init = hs.start();
    const first = await connect(a.url);
    const onB = await connect(b.url);
    const again = await connect(a.url);
    try {
      const response = ok(await request(first, 'handshake:init', { message: init }));
      const { complete } = await hs.receiveResponse(response.message);
      ok(await request(first, 'handshake:complete', { message: complete }));

      for (const socket of [onB, again]) {
        const closed = disconnected(socket);
        const refused = failed(await request(socket, 'handshake:init', { message: init }));
        expect(refused.code).toBe(ProtocolErrorCode.Replay);
        expect(refused.message).toBe('handshake: this HandshakeInit was already used');
        expect(await closed).toBe('io server disconnect');
      }
      // The genuine socket is unaffected.
      expect(ok(await request(first, 'fetch', {}))).toEqual({ status: 'ok', mail: [], cursor: null });
      expect(await raw(first, 'prekeys:count', {})).toEqual({
        status: 'ok',
        oneTimePrekeys: 0,
        hasSignedPrekey: false,
        hasKemPrekey: false,
      });
    } finally {
      closeAll(first, onB, again);
    }
  });
});
