/**
 * A socket without a completed handshake gets nothing processed and nothing delivered, and is
 * closed: no handshake at all, one left unfinished (closed by the handshake timeout), a stale or
 * forged one (closed at once after its error reply), and a browser Origin the relay does not allow
 * (refused at connect). The relay's clock is fixed so CLOCK_SKEW replies can be checked exactly.
 */
import { generateIdentityKeyPair } from '@usm/crypto';
import { HandshakeClient, ProtocolErrorCode } from '@usm/protocol';
import type pg from 'pg';
import { usePostgres } from '../../../test/support/postgres.js';
import { recordCase } from '../../../test/reliability/report.js';
import { RELAY_MESSAGES as M } from '../src/index.js';
import { ManualClock, RELAY_IDENTITY } from './fixtures.js';
import {
  type Client,
  type RelayNode,
  authenticate,
  client,
  closeAll,
  connect,
  disconnected,
  envelopeTo,
  failed,
  ok,
  raw,
  request,
  startRelay,
} from './relay-client.js';

const MINUTE = 60_000;

describe('relay gateway: unauthenticated sockets', () => {
  const clock = new ManualClock(Date.now());
  let node: RelayNode;
  let strict: RelayNode;
  let db: pg.Client;
  let bob: Client;
  afterAll(async () => {
    closeAll(bob?.socket);
    await node?.close();
    await strict?.close();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    node = await startRelay(pg.url, { socket: { adapter: 'none' }, handshake: { timeoutMs: 300 } }, clock);
    strict = await startRelay(pg.url, {
      socket: { adapter: 'none', allowedOrigins: ['https://chat.example.com'] },
    });
    db = await pg.client();
    bob = await client(node.url);
  });

  const mailRows = async (): Promise<number> =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM usm_mail`)).rows[0]!.n;
  const unauthenticated = {
    status: 'error',
    code: ProtocolErrorCode.Unauthenticated,
    message: M.unauthenticated(),
  };

  it('no handshake: every other event is refused with UNAUTHENTICATED, nothing is stored, and the socket is closed', async () => {
    for (const [event, payload] of [
      ['send', { envelopes: [envelopeTo(bob.address)] }],
      ['fetch', {}],
      ['ack', { ids: ['AAAAAAAAAAAAAAAAAAAAAA'] }],
      ['prekeys:publish', { oneTimePrekeys: [{ id: 1, record: new Uint8Array(40) }] }],
      ['prekeys:claim', { address: bob.address }],
    ] as const) {
      const socket = await connect(node.url);
      const closed = disconnected(socket);
      expect(await raw(socket, event, payload)).toEqual(unauthenticated);
      expect(await closed).toBe('io server disconnect');
    }
    const rows = await mailRows();
    recordCase({
      id: 'A4',
      title:
        'No handshake: every event refused (UNAUTHENTICATED), nothing stored, the socket closed by the relay',
      figures: {
        'events tried': 5,
        reply: ProtocolErrorCode.Unauthenticated,
        'mail rows': rows,
        'closed by the relay': 5,
      },
      outcome: rows === 0 ? 'pass' : 'fail',
    });
    expect(rows).toBe(0);
    expect((await db.query(`SELECT 1 FROM usm_one_time_prekeys`)).rowCount).toBe(0);
  });

  it('an idle socket, and one whose handshake never completes, are closed by the handshake timeout', async () => {
    const idle = await connect(node.url);
    expect(await disconnected(idle)).toBe('io server disconnect');

    const halfway = await connect(node.url);
    const closed = disconnected(halfway);
    const hs = new HandshakeClient({
      identity: generateIdentityKeyPair(),
      relayIdentity: RELAY_IDENTITY.publicKey,
    });
    ok(await request(halfway, 'handshake:init', { message: hs.start() }));
    expect(await closed).toBe('io server disconnect');
    recordCase({
      id: 'A5',
      title: 'An idle socket and an unfinished handshake are closed by the handshake timeout',
      figures: { sockets: 2, 'handshake timeout (ms, this node)': 300, 'closed by the relay': 2 },
      outcome: 'pass',
    });
  });

  it('a stale Init (client clock 6 minutes off) gets CLOCK_SKEW with the relay time; 4 minutes is accepted', async () => {
    for (const offset of [6 * MINUTE, -6 * MINUTE]) {
      const socket = await connect(node.url);
      const closed = disconnected(socket);
      const hs = new HandshakeClient({
        identity: generateIdentityKeyPair(),
        relayIdentity: RELAY_IDENTITY.publicKey,
        clock: { now: () => clock.now() + offset },
      });
      const refused = failed(await request(socket, 'handshake:init', { message: hs.start() }));
      expect(refused.code).toBe(ProtocolErrorCode.ClockSkew);
      expect(refused.serverTimeMs).toBe(clock.now());
      expect(await closed).toBe('io server disconnect');
    }
    for (const offset of [4 * MINUTE, -4 * MINUTE]) {
      const socket = await connect(node.url);
      try {
        const address = await authenticate(socket, generateIdentityKeyPair(), {
          now: () => clock.now() + offset,
        });
        expect(ok(await request(socket, 'fetch', {}))).toEqual({ status: 'ok', mail: [], cursor: null });
        expect(address.endsWith('.1')).toBe(true);
      } finally {
        socket.close();
      }
    }
    recordCase({
      id: 'A6',
      title:
        'An expired handshake (client clock 6 minutes off) gets CLOCK_SKEW with the relay time and is closed; 4 minutes passes',
      figures: { refused: 2, reply: ProtocolErrorCode.ClockSkew, 'accepted at ±4 min': 2 },
      outcome: 'pass',
    });
  });

  it('a forged Init, a forged Complete, or a Complete without an Init is refused with its code and the socket closed', async () => {
    // Init with a broken signature (claiming Bob's identity key would need Bob's secret key).
    const forgedInit = await connect(node.url);
    let closed = disconnected(forgedInit);
    const init = new HandshakeClient({
      identity: bob.identity,
      relayIdentity: RELAY_IDENTITY.publicKey,
    }).start();
    init[init.length - 1]! ^= 0x01;
    expect(failed(await request(forgedInit, 'handshake:init', { message: init })).code).toBe(
      ProtocolErrorCode.BadSignature,
    );
    expect(await closed).toBe('io server disconnect');

    // Complete with a broken Finished MAC.
    const forgedComplete = await connect(node.url);
    closed = disconnected(forgedComplete);
    const hs = new HandshakeClient({
      identity: generateIdentityKeyPair(),
      relayIdentity: RELAY_IDENTITY.publicKey,
    });
    const response = ok(await request(forgedComplete, 'handshake:init', { message: hs.start() }));
    const { complete } = await hs.receiveResponse(response.message);
    complete[complete.length - 1]! ^= 0x01;
    expect(failed(await request(forgedComplete, 'handshake:complete', { message: complete })).code).toBe(
      ProtocolErrorCode.BadMac,
    );
    expect(await closed).toBe('io server disconnect');

    const early = await connect(node.url);
    closed = disconnected(early);
    const unexpected = failed(await request(early, 'handshake:complete', { message: new Uint8Array(98) }));
    expect(unexpected).toEqual({
      status: 'error',
      code: ProtocolErrorCode.UnexpectedMessage,
      message: 'handshake: handshake:complete before handshake:init',
    });
    expect(await closed).toBe('io server disconnect');

    // The genuine client is untouched, and a second handshake on its socket is refused without closing it.
    expect(failed(await request(bob.socket, 'handshake:init', { message: init })).code).toBe(
      ProtocolErrorCode.UnexpectedMessage,
    );
    expect(ok(await request(bob.socket, 'fetch', {}))).toEqual({ status: 'ok', mail: [], cursor: null });
    recordCase({
      id: 'A7',
      title:
        "A forged handshake (Init claiming B's key, a forged Complete, a Complete without Init): refused with its code, closed",
      figures: {
        'forged Init': 'BAD_SIGNATURE',
        'forged Complete': 'BAD_MAC',
        'Complete first': 'UNEXPECTED_MESSAGE',
        'closed by the relay': 3,
      },
      outcome: 'pass',
    });
  });

  it('refuses a browser Origin outside socket.allowedOrigins at connect, on both transports', async () => {
    for (const transports of [['websocket'], ['polling']] as const) {
      await expect(
        connect(strict.url, {
          transports: [...transports],
          extraHeaders: { Origin: 'https://evil.example' },
        }),
      ).rejects.toThrow(transports[0] === 'websocket' ? 'websocket error' : 'xhr poll error');
      const allowed = await connect(strict.url, {
        transports: [...transports],
        extraHeaders: { Origin: 'https://chat.example.com' },
      });
      expect(await authenticate(allowed, generateIdentityKeyPair())).toMatch(/\.1$/);
      allowed.close();
    }
    // No Origin header (a native app, a server): not a browser, not refused.
    const native = await connect(strict.url);
    expect(native.connected).toBe(true);
    native.close();
    const polling = await fetch(`${strict.url}/socket.io/?EIO=4&transport=polling`, {
      headers: { Origin: 'https://chat.example.com' },
    });
    expect(polling.headers.get('access-control-allow-origin')).toBe('https://chat.example.com');
    expect(
      (
        await fetch(`${strict.url}/socket.io/?EIO=4&transport=polling`, {
          headers: { Origin: 'https://evil.example' },
        })
      ).status,
    ).toBe(403);
    recordCase({
      id: 'A8',
      title:
        'A disallowed browser Origin is refused at connect on both transports (HTTP 403); allowed and native clients pass',
      figures: { transports: 2, 'polling status': 403 },
      outcome: 'pass',
    });
  });
});
