/**
 * Hostile and broken input through the gateway: a frame over maxHttpBufferSize closes only its
 * socket, unknown and reserved event names and forged binary placeholders are refused without
 * taking the relay down, malformed envelopes get their own `rejected` result while the batch goes
 * on, wrong types and extra fields get a validation error naming the field, a fetch cursor past
 * PostgreSQL's bigint gets MALFORMED without reaching the database or any log line, and a flood
 * (of sends or fetches) gets RATE_LIMITED with retryAfterMs and stores nothing past the limit.
 */
import {
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPE_CIPHERTEXT_BYTES,
  ProtocolErrorCode,
  SOCKET_MAX_HTTP_BUFFER_BYTES,
  CLIENT_EVENTS,
  type FetchResult,
  type Reply,
} from '@usm/protocol';
import { Logger } from '@nestjs/common';
import type pg from 'pg';
import { usePostgres } from '../../../test/support/postgres.js';
import { recordCase } from '../../../test/reliability/report.js';
import { MAX_STORE_CURSOR, RELAY_DEFAULTS, RELAY_MESSAGES as M } from '../src/index.js';
import {
  type Client,
  type RelayNode,
  client,
  closeAll,
  disconnected,
  envelopeTo,
  failed,
  fire,
  ok,
  raw,
  request,
  startRelay,
} from './relay-client.js';
import { CapturingLogger } from '../../../test/support/capturing-logger.js';

/** Cursors that match the store's digit pattern but lie past PostgreSQL's bigint (2^63 - 1). */
const PAST_BIGINT = ['9999999999999999999', '9223372036854775808'];

describe('relay gateway: bad input', () => {
  const logger = new CapturingLogger();
  let node: RelayNode;
  let limited: RelayNode;
  let db: pg.Client;
  let alice: Client;
  let bob: Client;
  afterAll(async () => {
    closeAll(alice?.socket, bob?.socket);
    await node?.close();
    await limited?.close();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    node = await startRelay(pg.url, { socket: { adapter: 'none' } });
    limited = await startRelay(pg.url, {
      socket: { adapter: 'none' },
      rateLimits: {
        enabled: true,
        buckets: {
          send: {
            perIdentity: { points: 5, durationSeconds: 60 },
            perAddress: { points: 8, durationSeconds: 60 },
          },
        },
      },
    });
    db = await pg.client();
    [alice, bob] = await Promise.all([client(node.url), client(node.url)]);
    // Nest's loggers are process-wide: from here on, both nodes log into `logger`.
    node.app.useLogger(logger);
  });

  const rows = async (recipient: string): Promise<number> =>
    (
      await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, [
        recipient,
      ])
    ).rows[0]!.n;

  /** Alice can still send to Bob and Bob still gets it: the relay and other clients are unaffected. */
  async function stillServed(): Promise<void> {
    const before = await rows(bob.address);
    const sent = ok(await request(alice.socket, 'send', { envelopes: [envelopeTo(bob.address)] }));
    expect(sent.results.map((r) => r.status)).toEqual(['stored']);
    expect(await rows(bob.address)).toBe(before + 1);
  }

  it('a 10 MB frame closes only that socket; other clients keep working', async () => {
    const attacker = await client(node.url);
    const closed = disconnected(attacker.socket);
    fire(attacker.socket, 'send', { envelopes: [new Uint8Array(10 * 1024 * 1024)] });
    expect(await closed).toBe('transport close');
    await stillServed();
    // Under the socket limit, an oversized envelope is the payload check's to answer.
    const big = failed(await request(alice.socket, 'send', { envelopes: [new Uint8Array(100_000)] }));
    expect(big).toEqual({
      status: 'error',
      code: ProtocolErrorCode.TooLarge,
      message: `send.envelopes[0]: 100000 bytes, the limit is ${MAX_ENVELOPE_BYTES}`,
    });
    expect(100_000).toBeLessThan(SOCKET_MAX_HTTP_BUFFER_BYTES);
  });

  it('an envelope one byte over the limit gets TOO_LARGE and the socket lives on; a maximal one is stored', async () => {
    const over = failed(
      await request(alice.socket, 'send', { envelopes: [new Uint8Array(MAX_ENVELOPE_BYTES + 1)] }),
    );
    expect(over).toEqual({
      status: 'error',
      code: ProtocolErrorCode.TooLarge,
      message: `send.envelopes[0]: ${MAX_ENVELOPE_BYTES + 1} bytes, the limit is ${MAX_ENVELOPE_BYTES}`,
    });
    const maximal = envelopeTo(bob.address, MAX_ENVELOPE_CIPHERTEXT_BYTES);
    expect(maximal.length).toBe(MAX_ENVELOPE_BYTES);
    const before = await rows(bob.address);
    expect(
      ok(await request(alice.socket, 'send', { envelopes: [maximal] })).results.map((r) => r.status),
    ).toEqual(['stored']);
    expect(await rows(bob.address)).toBe(before + 1);
  });

  it('refuses unknown and reserved event names with MALFORMED, processes nothing, and stays up', async () => {
    for (const event of [
      'error',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'toString',
      'mail',
      'hello',
      '',
    ]) {
      expect(await raw(alice.socket, event, { ids: ['x'] })).toEqual({
        status: 'error',
        code: ProtocolErrorCode.Malformed,
        message: M.unknownEvent(CLIENT_EVENTS),
      });
    }
    // An event without an acknowledgement is not run (nothing could report its fate).
    const before = await rows(bob.address);
    fire(alice.socket, 'send', { envelopes: [envelopeTo(bob.address)] });
    ok(await request(alice.socket, 'send', { envelopes: [envelopeTo(bob.address)] }));
    expect(await rows(bob.address)).toBe(before + 1);
    expect(alice.socket.connected).toBe(true);
  });

  it('survives raw frames: reserved names without acks, numeric names, forged binary placeholders', async () => {
    const fuzzer = await client(node.url);
    const engine = fuzzer.socket.io.engine;
    engine.write('2["error",{"message":"boom"}]');
    engine.write('2["__proto__",{"polluted":true}]');
    engine.write('2[42,{}]');
    engine.write('27["constructor",{"prototype":{}}]');
    await stillServed();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // A binary event whose placeholder points past its attachments: the decoder throws, socket.io
    // emits 'error' on the socket (fatal without a listener); the relay closes only that socket.
    const closed = disconnected(fuzzer.socket);
    engine.write('51-9["send",{"envelopes":[{"_placeholder":true,"num":7}]}]');
    engine.write(new Uint8Array([1, 2, 3]));
    // The relay's 'error' listener disconnects it (a disconnect packet, then the transport closes).
    expect(await closed).toBe('io server disconnect');
    await stillServed();
  });

  it('rejects malformed envelopes one by one with their exact code; the rest of the batch is stored', async () => {
    const good = envelopeTo(bob.address);
    const badVersion = envelopeTo(bob.address).slice();
    badVersion[0] = 2;
    const truncated = envelopeTo(bob.address).subarray(0, 57 + 47);
    const claimsTooMuch = envelopeTo(bob.address).slice();
    new DataView(claimsTooMuch.buffer).setUint32(53, 70_000);
    const deviceZero = envelopeTo(bob.address).slice();
    new DataView(deviceZero.buffer).setUint32(49, 0);
    const alsoGood = envelopeTo(bob.address);
    const before = await rows(bob.address);

    const sent = ok(
      await request(alice.socket, 'send', {
        envelopes: [good, badVersion, truncated, claimsTooMuch, deviceZero, alsoGood],
      }),
    );
    expect(sent.results.map((r) => r.status)).toEqual([
      'stored',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
      'stored',
    ]);
    expect(sent.results.slice(1, 5)).toEqual([
      {
        status: 'rejected',
        code: ProtocolErrorCode.UnsupportedVersion,
        message: 'envelope: version 2 is not supported (expected 1)',
      },
      {
        status: 'rejected',
        code: ProtocolErrorCode.Malformed,
        message: 'envelope: ciphertext length says 48 bytes, 47 present',
      },
      {
        status: 'rejected',
        code: ProtocolErrorCode.TooLarge,
        message: `envelope: ciphertext of 70000 bytes, the limit is ${MAX_ENVELOPE_CIPHERTEXT_BYTES}`,
      },
      {
        status: 'rejected',
        code: ProtocolErrorCode.Malformed,
        message: 'recipient: device id 0 is reserved',
      },
    ]);
    expect(await rows(bob.address)).toBe(before + 2);
  });

  it('answers wrong types and extra fields with a validation error naming the field', async () => {
    const cases: [string, unknown, ProtocolErrorCode, string][] = [
      [
        'send',
        { envelopes: 'abc' },
        ProtocolErrorCode.Malformed,
        'send.envelopes: expected an array, got a string',
      ],
      [
        'send',
        { envelopes: [42] },
        ProtocolErrorCode.Malformed,
        'send.envelopes[0]: expected bytes (Uint8Array), got a number',
      ],
      ['send', { envelopes: [], extra: 1 }, ProtocolErrorCode.Malformed, 'send: unexpected field "extra"'],
      ['send', { envelopes: [] }, ProtocolErrorCode.Malformed, 'send.envelopes: 0 items, the minimum is 1'],
      [
        'fetch',
        { limit: '5' },
        ProtocolErrorCode.Malformed,
        'fetch.limit: expected an integer, got a string',
      ],
      ['fetch', { limit: 51 }, ProtocolErrorCode.TooLarge, 'fetch.limit: the limit is 50'],
      ['ack', [], ProtocolErrorCode.Malformed, 'ack: expected an object, got an array'],
      [
        'prekeys:count',
        { deep: { deeper: [[[[{}]]]] } },
        ProtocolErrorCode.Malformed,
        'prekeys:count: unexpected field "deep"',
      ],
      ['prekeys:claim', { address: 'not an address' }, ProtocolErrorCode.Malformed, 'prekeys:claim.address'],
    ];
    for (const [event, payload, code, message] of cases) {
      const reply = failed((await raw(alice.socket, event, payload)) as never);
      expect(reply.code).toBe(code);
      expect(reply.message.startsWith(message)).toBe(true);
    }
    // A payload missing altogether (only the acknowledgement).
    expect(await raw(alice.socket, 'fetch')).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Malformed,
      message: 'fetch: expected an object, got undefined',
    });
    recordCase({
      id: 'H5',
      title:
        'Wrong types and extra fields get a validation error naming the field (MALFORMED / TOO_LARGE); the socket lives on',
      figures: { payloads: cases.length + 1, 'named the field': cases.length + 1 },
      outcome: alice.socket.connected ? 'pass' : 'fail',
    });
    expect(alice.socket.connected).toBe(true);
  });

  it('a flood gets RATE_LIMITED with retryAfterMs, per identity and per network address, and nothing past the limit is stored', async () => {
    const flooder = await client(limited.url);
    const second = await client(limited.url);
    const target = await client(limited.url);
    try {
      const send = (c: Client) => request(c.socket, 'send', { envelopes: [envelopeTo(target.address)] });
      for (let i = 0; i < 5; i++) expect(ok(await send(flooder)).results[0]!.status).toBe('stored');
      const refused = failed(await send(flooder));
      expect(refused.code).toBe(ProtocolErrorCode.RateLimited);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
      expect(refused.message).toBe(M.rateLimited('send', refused.retryAfterMs!));
      // A batch is charged one point per envelope: two more would pass the address's 8.
      expect(ok(await send(second)).results[0]!.status).toBe('stored');
      expect(ok(await send(second)).results[0]!.status).toBe('stored');
      const byAddress = failed(
        await request(second.socket, 'send', {
          envelopes: [envelopeTo(target.address), envelopeTo(target.address)],
        }),
      );
      expect(byAddress.code).toBe(ProtocolErrorCode.RateLimited);
      expect(await rows(target.address)).toBe(7);
    } finally {
      closeAll(flooder.socket, second.socket, target.socket);
    }
  });
  it('a fetch cursor past bigint gets MALFORMED saying what is accepted, reaches no SQL and no log line; bigint max is served', async () => {
    const before = logger.lines.length;
    for (const cursor of PAST_BIGINT) {
      const refused = failed(await request(alice.socket, 'fetch', { cursor }));
      expect(refused).toEqual({
        status: 'error',
        code: ProtocolErrorCode.Malformed,
        message: M.badCursor(MAX_STORE_CURSOR),
      });
      expect(refused.message).not.toContain(cursor);
    }
    // The largest cursor the store could hand out is a valid one: an empty last page.
    expect(ok(await request(alice.socket, 'fetch', { cursor: MAX_STORE_CURSOR }))).toEqual({
      status: 'ok',
      mail: [],
      cursor: null,
    });
    // Nothing was logged for them, at any level (a database error quoted the value before).
    const logged = logger.lines.slice(before);
    for (const cursor of PAST_BIGINT) expect(logged.filter((line) => line.includes(cursor))).toEqual([]);
    expect(logged).toEqual([]);
    // The capture does hear the relay's loggers: a line of the relay's context lands in it.
    new Logger('MessengerRelay').warn('capture check');
    expect(logger.lines.slice(before)).toEqual([
      JSON.stringify({ level: 'warn', message: 'capture check', rest: ['MessengerRelay'] }),
    ]);
    expect(alice.socket.connected).toBe(true);
  });

  it('fetch is rate limited: a full mailbox drains in pages under the default bucket, a flood of 1,000 bad cursors gets RATE_LIMITED past it and logs nothing', async () => {
    const { perIdentity } = RELAY_DEFAULTS.rateLimits.buckets.fetch;
    const reader = await client(limited.url);
    const flooder = await client(limited.url);
    try {
      // A full mailbox (the default quota of 10,000) of small envelopes, written straight into the table.
      const quota = RELAY_DEFAULTS.mail.quotaPerRecipient;
      await db.query(
        `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
         SELECT $1, decode(md5($1 || i::text), 'hex'), $2, $3, now(), now() + interval '1 day'
           FROM generate_series(1, $4::int) AS i`,
        [reader.address, alice.address, Buffer.from(envelopeTo(reader.address)), quota],
      );
      // The client's drain: page after page, as fast as the replies come, until the cursor is null.
      let cursor: string | null = null;
      let pages = 0;
      let received = 0;
      do {
        const page: FetchResult = ok(
          await request(reader.socket, 'fetch', cursor === null ? {} : { cursor }),
        );
        pages++;
        received += page.mail.length;
        cursor = page.cursor;
      } while (cursor !== null);
      expect(received).toBe(quota);
      expect(pages).toBe(quota / 50);
      expect(pages).toBeLessThan(perIdentity.points);

      // The flood: 1,000 fetches with a cursor past bigint, 100 at a time.
      const before = logger.lines.length;
      const replies: Reply<FetchResult>[] = [];
      for (let i = 0; i < 1_000; i += 100) {
        replies.push(
          ...(await Promise.all(
            Array.from({ length: 100 }, () =>
              request(flooder.socket, 'fetch', { cursor: PAST_BIGINT[0] as string }),
            ),
          )),
        );
      }
      const errors = replies.map((r) => failed(r));
      const malformed = errors.filter((e) => e.code === ProtocolErrorCode.Malformed);
      const limitedReplies = errors.filter((e) => e.code === ProtocolErrorCode.RateLimited);
      expect(malformed).toHaveLength(perIdentity.points);
      expect(limitedReplies).toHaveLength(1_000 - malformed.length);
      for (const refused of limitedReplies) {
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
        expect(refused.message).toBe(M.rateLimited('fetch', refused.retryAfterMs!));
      }
      // 1,000 refused requests, not one log line (each was an error line quoting the value before).
      expect(logger.lines.slice(before)).toEqual([]);
      // The bucket is per identity: the reader, charged for its drain only, still fetches.
      expect(ok(await request(reader.socket, 'fetch', { limit: 1 })).mail).toHaveLength(1);
    } finally {
      closeAll(reader.socket, flooder.socket);
    }
  });
});
