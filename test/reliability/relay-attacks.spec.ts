/**
 * Attacks on and through the relay module (two Nest nodes on one real PostgreSQL, real
 * socket.io clients): the relay acks only what PostgreSQL committed; handshake nonces are kept
 * at least 10 minutes in usm_replay_nonces; mail expires after the default 30 days; exact replays
 * through the relay reach the application zero times; 100 concurrent claims hand out each of 10
 * one-time prekeys at most once; every field of every handshake message mutated, and message 3
 * replayed to the same and another node, is refused before any mailbox event; a flood gets
 * RATE_LIMITED and reconnecting to the other node does not reset the bucket.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClientError, type IncomingMessage, MemoryStore, MessengerClient } from '@usm/client';
import { generateIdentityKeyPair, toHex } from '@usm/crypto';
import {
  DEFAULT_REPLAY_RETENTION_MS,
  HandshakeClient,
  ProtocolErrorCode,
  addressOf,
  formatAddress,
  formatMessageId,
  peekEnvelopeRoute,
} from '@usm/protocol';
import { RELAY_DEFAULTS } from '@usm/relay';
import type pg from 'pg';
import { RELAY_IDENTITY } from '../../libs/relay/test/fixtures.js';
import {
  type Client,
  type ClientSocket,
  type RelayNode,
  client,
  closeAll,
  connect,
  disconnected,
  envelopeTo,
  failed,
  ok,
  request,
  startRelay,
} from '../../libs/relay/test/relay-client.js';
import { usePostgres } from '../support/postgres.js';
import { SIZES } from './parameters.js';
import { recordCase, recordParameter } from './report.js';

const RELAY_KEY_HEX = toHex(RELAY_IDENTITY.publicKey.bytes);

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Counts `mail` pushes a socket receives, from now on. */
function mailEvents(socket: ClientSocket): { count: number } {
  const seen = { count: 0 };
  (socket.on as (e: string, fn: () => void) => void).call(socket, 'mail', () => void seen.count++);
  return seen;
}

describe('attacks on and through the relay', () => {
  let a: RelayNode;
  let b: RelayNode;
  let limitedA: RelayNode;
  let limitedB: RelayNode;
  let db: pg.Client;
  const opened: MessengerClient[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((c) => c.close()));
    for (const n of [a, b, limitedA, limitedB]) await n?.close();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    a = await startRelay(pg.url);
    b = await startRelay(pg.url);
    const rateLimits = {
      enabled: true,
      buckets: {
        send: {
          perIdentity: { points: 5, durationSeconds: 60 },
          perAddress: { points: 1000, durationSeconds: 60 },
        },
      },
    };
    limitedA = await startRelay(pg.url, { socket: { adapter: 'none' }, rateLimits });
    limitedB = await startRelay(pg.url, { socket: { adapter: 'none' }, rateLimits });
    db = await pg.client();
  });

  const count = async (sql: string, ...params: unknown[]): Promise<number> =>
    (await db.query<{ n: number }>(sql, params)).rows[0]!.n;
  const mailTo = (address: string) =>
    count(`SELECT count(*)::int AS n FROM usm_mail WHERE recipient = $1`, address);

  it('acks a send only after the commit: a transaction that fails at COMMIT gets no ok and leaves no row', async () => {
    const [sender, victim] = await Promise.all([client(a.url), client(a.url)]);
    try {
      // A deferred constraint trigger runs at COMMIT: the INSERT succeeds, the commit fails.
      await db.query(`CREATE TABLE reliability_fail_commit (recipient text PRIMARY KEY)`);
      await db.query(`
        CREATE FUNCTION reliability_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM reliability_fail_commit WHERE recipient = NEW.recipient) THEN
            RAISE EXCEPTION 'reliability: this commit is made to fail';
          END IF;
          RETURN NULL;
        END $$`);
      await db.query(`
        CREATE CONSTRAINT TRIGGER reliability_fail_commit AFTER INSERT ON usm_mail
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reliability_fail_commit()`);
      await db.query(`INSERT INTO reliability_fail_commit VALUES ($1)`, [victim.address]);
      const pushes = mailEvents(victim.socket);

      const refused = failed(
        await request(sender.socket, 'send', { envelopes: [envelopeTo(victim.address)] }),
      );
      const rowsAfterFailure = await mailTo(victim.address);
      await db.query(`DELETE FROM reliability_fail_commit`);
      const envelope = envelopeTo(victim.address);
      const stored = ok(await request(sender.socket, 'send', { envelopes: [envelope] }));
      await until('the push after the commit', () => pushes.count === 1);
      recordCase({
        id: 'P2',
        title:
          'The relay acks a send only after the database commit (a commit made to fail: no ok, no row, no push)',
        figures: {
          'reply to the failed commit': refused.code,
          retryAfterMs: refused.retryAfterMs ?? 'none',
          'rows after the failed commit': rowsAfterFailure,
          'pushes for it': 0,
          'next send': stored.results[0]!.status,
        },
        outcome: refused.code === ProtocolErrorCode.Unavailable && rowsAfterFailure === 0 ? 'pass' : 'fail',
      });
      expect(refused.code).toBe(ProtocolErrorCode.Unavailable);
      expect(rowsAfterFailure).toBe(0);
      expect(stored.results).toEqual([
        { status: 'stored', id: formatMessageId(peekEnvelopeRoute(envelope).id) },
      ]);
      expect(await mailTo(victim.address)).toBe(1);
      expect(pushes.count).toBe(1); // only the committed one
    } finally {
      await db.query(`DROP TRIGGER IF EXISTS reliability_fail_commit ON usm_mail`);
      await db.query(`DROP FUNCTION IF EXISTS reliability_fail_commit()`);
      await db.query(`DROP TABLE IF EXISTS reliability_fail_commit`);
      closeAll(sender.socket, victim.socket);
    }
  });

  it('keeps handshake nonces at least 10 minutes in usm_replay_nonces, and mail 30 days by default', async () => {
    const before = Date.now();
    const noncesBefore = await count(`SELECT count(*)::int AS n FROM usm_replay_nonces`);
    const [sender, recipient] = await Promise.all([client(a.url), client(a.url)]);
    try {
      const nonces = await db.query<{ ms: string }>(
        `SELECT (extract(epoch FROM expires_at) * 1000)::bigint AS ms FROM usm_replay_nonces ORDER BY expires_at DESC LIMIT 2`,
      );
      const shortest = Math.min(...nonces.rows.map((r) => Number(r.ms))) - before;
      ok(await request(sender.socket, 'send', { envelopes: [envelopeTo(recipient.address)] }));
      const ttl = await db.query<{ ms: string }>(
        `SELECT (extract(epoch FROM expires_at - created_at) * 1000)::bigint AS ms FROM usm_mail WHERE recipient = $1`,
        [recipient.address],
      );
      const ttlMs = Number(ttl.rows[0]!.ms);
      recordParameter(
        'usm_replay_nonces: expires_at - handshake time (ms, at least)',
        shortest,
        'PostgreSQL, after a real handshake',
      );
      recordParameter('usm_mail: expires_at - created_at (ms)', ttlMs, 'PostgreSQL, after a real send');
      const newNonces = (await count(`SELECT count(*)::int AS n FROM usm_replay_nonces`)) - noncesBefore;
      recordCase({
        id: 'P3',
        title: 'Handshake nonces kept >= 10 minutes in PostgreSQL; mailbox TTL 30 days by default',
        figures: {
          'nonce rows per handshake': newNonces / 2,
          'nonce kept (ms, at least)': shortest,
          'mail TTL (ms)': ttlMs,
        },
        outcome:
          shortest >= DEFAULT_REPLAY_RETENTION_MS && ttlMs === RELAY_DEFAULTS.mail.ttlMs ? 'pass' : 'fail',
      });
      expect(newNonces).toBe(2);
      expect(shortest).toBeGreaterThanOrEqual(DEFAULT_REPLAY_RETENTION_MS);
      expect(ttlMs).toBe(RELAY_DEFAULTS.mail.ttlMs);
    } finally {
      closeAll(sender.socket, recipient.socket);
    }
  });

  it('exact replays through the relay reach the application zero times', async () => {
    const open = async (url: string) => {
      const c = await MessengerClient.open({
        relayUrl: url,
        relayIdentityKey: RELAY_KEY_HEX,
        store: new MemoryStore(),
        backoff: { baseMs: 50, capMs: 500 },
        fetchIntervalMs: 300,
      });
      opened.push(c);
      return c;
    };
    const alice = await open(a.url);
    const bob = await open(b.url);
    const got: IncomingMessage[] = [];
    const errors: ClientError[] = [];
    bob.on('message', (m) => void got.push(m));
    bob.on('error', (e) => void errors.push(e));
    await Promise.all([alice.connect(), bob.connect()]);
    // Keep a copy of every row the relay stores (what a replaying relay or database could re-inject).
    await db.query(`CREATE TABLE reliability_mail_copy AS SELECT * FROM usm_mail WITH NO DATA`);
    await db.query(`
      CREATE FUNCTION reliability_copy_mail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO reliability_mail_copy SELECT NEW.*; RETURN NEW; END $$`);
    await db.query(
      `CREATE TRIGGER reliability_copy_mail AFTER INSERT ON usm_mail FOR EACH ROW EXECUTE FUNCTION reliability_copy_mail()`,
    );
    try {
      const { id } = await alice.send(bob.address, 'once');
      await until('delivered once', () => got.length === 1);
      await until('acked', async () => (await mailTo(bob.address)) === 0);
      const copy = (
        await db.query<{ envelope: Buffer; message_id: Buffer }>(
          `SELECT envelope, message_id FROM reliability_mail_copy WHERE recipient = $1 AND sender = $2`,
          [bob.address, alice.address],
        )
      ).rows;
      expect(copy).toHaveLength(1);
      const envelope = new Uint8Array(copy[0]!.envelope);

      // 1. Someone else re-sends the stored envelope: the relay stamps THEIR identity.
      const mallory = await client(a.url);
      ok(await request(mallory.socket, 'send', { envelopes: [envelope] }));
      await until('the re-sent copy consumed', async () => (await mailTo(bob.address)) === 0);
      mallory.socket.close();
      // 2. The relay (or its database) re-injects the row as it was, stamped with Alice.
      await db.query(
        `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
         SELECT recipient, message_id, sender, envelope, now(), now() + interval '1 day' FROM reliability_mail_copy
         WHERE recipient = $1 AND sender = $2`,
        [bob.address, alice.address],
      );
      await until('both replays consumed', async () => (await mailTo(bob.address)) === 0);
      await new Promise((r) => setTimeout(r, 500));
      recordCase({
        id: 'T2',
        title:
          'Exact replays through the relay (re-sent by another identity; re-injected with the original stamp) reach the app zero times',
        figures: {
          'app deliveries of the message': got.filter((m) => m.id === id).length,
          'replays injected': 2,
          'replays shown': got.length - 1,
          'errors reported (not from the peer)': errors.length,
          'rows left': await mailTo(bob.address),
        },
        outcome: got.length === 1 ? 'pass' : 'fail',
      });
      expect(got.map((m) => m.id)).toEqual([id]);
    } finally {
      await db.query(`DROP TRIGGER IF EXISTS reliability_copy_mail ON usm_mail`);
      await db.query(`DROP FUNCTION IF EXISTS reliability_copy_mail()`);
    }
  });

  it(`${SIZES.bundleClaims} concurrent bundle claims on two nodes hand each of ${SIZES.bundleOneTimePrekeys} one-time prekeys out at most once`, async () => {
    const owner = await client(a.url);
    const claimers = await Promise.all(Array.from({ length: 10 }, (_, i) => client(i % 2 ? b.url : a.url)));
    try {
      const record = (tag: number, size: number) => new Uint8Array(size).fill(tag & 0xff);
      ok(
        await request(owner.socket, 'prekeys:publish', {
          signedPrekey: { id: 1, record: record(1, 104) },
          kemPrekey: { id: 2, record: record(2, 1288) },
          oneTimePrekeys: Array.from({ length: SIZES.bundleOneTimePrekeys }, (_, i) => ({
            id: 100 + i,
            record: record(i, 40),
          })),
        }),
      );
      const replies = await Promise.all(
        Array.from({ length: SIZES.bundleClaims }, (_, i) =>
          request(claimers[i % claimers.length]!.socket, 'prekeys:claim', { address: owner.address }),
        ),
      );
      const ids = replies.map((r) => ok(r).bundle.oneTimePrekey?.id ?? null);
      const handedOut = ids.filter((x): x is number => x !== null);
      const twice = handedOut.length - new Set(handedOut).size;
      const left = await count(
        `SELECT count(*)::int AS n FROM usm_one_time_prekeys WHERE address = $1`,
        owner.address,
      );
      recordCase({
        id: 'T6',
        title: 'Concurrent bundle claims (two nodes) hand each one-time prekey out at most once',
        figures: {
          claims: SIZES.bundleClaims,
          'one-time prekeys': SIZES.bundleOneTimePrekeys,
          'handed out': handedOut.length,
          'handed out twice': twice,
          'bundles without one': ids.length - handedOut.length,
          'left in the database': left,
        },
        outcome:
          twice === 0 && handedOut.length === SIZES.bundleOneTimePrekeys && left === 0 ? 'pass' : 'fail',
      });
      expect(twice).toBe(0);
      expect(new Set(handedOut)).toEqual(
        new Set(Array.from({ length: SIZES.bundleOneTimePrekeys }, (_, i) => 100 + i)),
      );
      expect(left).toBe(0);
    } finally {
      closeAll(owner.socket, ...claimers.map((c) => c.socket));
    }
  });

  it('every field of every handshake message mutated, and message 3 replayed to the same and another node: refused before any mailbox event', async () => {
    const victim = generateIdentityKeyPair(); // whose mailbox the attacker is after
    const sender = await client(a.url);
    const victimAddress = formatAddress(addressOf(victim.publicKey));
    const outcomes = new Map<string, number>();
    const tally = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    let attempts = 0;
    let mailEventsOnRefused = 0;
    let notClosed = 0;

    /** One attempt: a fresh socket, `run` does the handshake steps; new mail to the victim arrives meanwhile. */
    async function attempt(url: string, run: (socket: ClientSocket) => Promise<string>): Promise<void> {
      attempts++;
      const socket = await connect(url);
      const pushes = mailEvents(socket);
      const closed = disconnected(socket);
      const outcome = await run(socket);
      tally(outcome);
      ok(await request(sender.socket, 'send', { envelopes: [envelopeTo(victimAddress)] }));
      let timer: NodeJS.Timeout | undefined;
      const reason = await Promise.race([
        closed,
        new Promise<string>((r) => (timer = setTimeout(() => r('still open'), 3000))),
      ]);
      clearTimeout(timer);
      if (reason === 'still open') notClosed++;
      mailEventsOnRefused += pushes.count;
      socket.close();
    }

    // Fields: [name, offset, length] per message (docs/protocol.md, "Messages").
    const initFields: [string, number, number][] = [
      ['version', 0, 1],
      ['type', 1, 1],
      ['ephemeral', 2, 34],
      ['identity', 36, 34],
      ['time', 70, 8],
      ['nonce', 78, 32],
      ['signature', 110, 64],
    ];
    const completeFields: [string, number, number][] = [
      ['version', 0, 1],
      ['type', 1, 1],
      ['signature', 2, 64],
      ['mac', 66, 32],
    ];
    const responseFields: [string, number, number][] = [
      ['version', 0, 1],
      ['type', 1, 1],
      ['ephemeral', 2, 34],
      ['time', 36, 8],
      ['sealed material', 44, 114],
      ['mac', 158, 32],
    ];
    const mutate = (bytes: Uint8Array, offset: number, length: number, where: 'first' | 'last') => {
      const out = bytes.slice();
      out[where === 'first' ? offset : offset + length - 1]! ^= where === 'first' ? 0x01 : 0x80;
      return out;
    };
    const codeOf = (reply: unknown) => (reply as { code?: string }).code ?? 'ok';
    const newClient = () =>
      new HandshakeClient({ identity: victim, relayIdentity: RELAY_IDENTITY.publicKey });

    for (const [field, offset, length] of initFields) {
      for (const where of ['first', 'last'] as const) {
        await attempt(a.url, async (socket) => {
          const init = mutate(newClient().start(), offset, length, where);
          return `Init ${field}: ${codeOf(await request(socket, 'handshake:init', { message: init }))}`;
        });
      }
    }
    for (const [field, offset, length] of completeFields) {
      for (const where of ['first', 'last'] as const) {
        await attempt(a.url, async (socket) => {
          const hs = newClient();
          const response = ok(await request(socket, 'handshake:init', { message: hs.start() }));
          const { complete } = await hs.receiveResponse(response.message);
          const reply = await request(socket, 'handshake:complete', {
            message: mutate(complete, offset, length, where),
          });
          return `Complete ${field}: ${codeOf(reply)}`;
        });
      }
    }
    // A Response mutated on its way: the client refuses it and sends no Complete (the relay's
    // handshake timeout closes the socket).
    let responseRefused = 0;
    for (const [field, offset, length] of responseFields) {
      for (const where of ['first', 'last'] as const) {
        const socket = await connect(a.url);
        const pushes = mailEvents(socket);
        try {
          const hs = newClient();
          const response = ok(await request(socket, 'handshake:init', { message: hs.start() }));
          await hs.receiveResponse(mutate(response.message, offset, length, where));
          tally(`Response ${field}: accepted`);
        } catch (err) {
          responseRefused++;
          tally(`Response ${field}: ${(err as { code?: string }).code}`);
        }
        mailEventsOnRefused += pushes.count;
        socket.close();
      }
    }
    // Message 3 of a genuine handshake, replayed into fresh handshakes on the same and the other node.
    const genuineSocket = await connect(a.url);
    const hs = newClient();
    const response = ok(await request(genuineSocket, 'handshake:init', { message: hs.start() }));
    const { complete } = await hs.receiveResponse(response.message);
    expect(ok(await request(genuineSocket, 'handshake:complete', { message: complete })).address).toBe(
      victimAddress,
    );
    genuineSocket.close();
    for (const [label, url] of [
      ['same node', a.url],
      ['other node', b.url],
    ] as const) {
      await attempt(url, async (socket) => {
        const fresh = newClient();
        ok(await request(socket, 'handshake:init', { message: fresh.start() }));
        return `Complete replayed (${label}): ${codeOf(await request(socket, 'handshake:complete', { message: complete }))}`;
      });
      await attempt(
        url,
        async (socket) =>
          `Complete replayed without Init (${label}): ${codeOf(await request(socket, 'handshake:complete', { message: complete }))}`,
      );
    }
    sender.socket.close();
    const accepted = [...outcomes.entries()].filter(([k]) => k.endsWith(': ok') || k.endsWith(': accepted'));
    recordCase({
      id: 'T7',
      title:
        'Every handshake field mutated, and message 3 replayed to the same and another node: refused, no mail event, socket closed',
      figures: {
        'relay attempts': attempts,
        'responses mutated (client refuses)': responseFields.length * 2,
        accepted: accepted.length,
        'mail events on refused sockets': mailEventsOnRefused,
        'sockets not closed within 3 s': notClosed,
        codes: [...new Set([...outcomes.keys()].map((k) => k.split(': ')[1]))].join(', '),
      },
      outcome: accepted.length === 0 && mailEventsOnRefused === 0 && notClosed === 0 ? 'pass' : 'fail',
    });
    expect(accepted).toEqual([]);
    expect(mailEventsOnRefused).toBe(0);
    expect(notClosed).toBe(0);
    expect(responseRefused).toBe(responseFields.length * 2);
    expect(outcomes.get('Complete replayed (same node): BAD_MAC')).toBe(1);
    expect(outcomes.get('Complete replayed (other node): BAD_MAC')).toBe(1);
    expect(outcomes.get('Complete replayed without Init (other node): UNEXPECTED_MESSAGE')).toBe(1);
  });

  it('a flood gets RATE_LIMITED with retryAfterMs, stores nothing more, and reconnecting to another node does not reset the bucket', async () => {
    const identity = generateIdentityKeyPair();
    const target = await client(limitedA.url);
    const flooder: Client = await client(limitedA.url, identity);
    try {
      const send = (c: Client) => request(c.socket, 'send', { envelopes: [envelopeTo(target.address)] });
      const statuses: string[] = [];
      let retryAfterMs = 0;
      for (let i = 0; i < SIZES.floodSends; i++) {
        const reply = await send(flooder);
        if (reply.status === 'ok') statuses.push(reply.results[0]!.status);
        else {
          statuses.push(reply.code);
          retryAfterMs ||= reply.retryAfterMs ?? 0;
        }
      }
      flooder.socket.close();
      const elsewhere = await client(limitedB.url, identity);
      const onB = failed(await send(elsewhere));
      elsewhere.socket.close();
      const stored = await mailTo(target.address);
      const limited = statuses.filter((s) => s === ProtocolErrorCode.RateLimited).length;
      recordCase({
        id: 'H6',
        title:
          'A flood gets RATE_LIMITED with retryAfterMs, nothing more stored; reconnecting to another node does not reset the bucket',
        figures: {
          sends: SIZES.floodSends,
          stored,
          RATE_LIMITED: limited,
          retryAfterMs,
          'first send on the other node': onB.code,
        },
        outcome:
          stored === 5 && limited === SIZES.floodSends - 5 && onB.code === ProtocolErrorCode.RateLimited
            ? 'pass'
            : 'fail',
      });
      expect(statuses.slice(0, 5)).toEqual(['stored', 'stored', 'stored', 'stored', 'stored']);
      expect(limited).toBe(SIZES.floodSends - 5);
      expect(retryAfterMs).toBeGreaterThan(0);
      expect(retryAfterMs).toBeLessThanOrEqual(60_000);
      expect(onB.code).toBe(ProtocolErrorCode.RateLimited);
      expect(onB.retryAfterMs).toBeGreaterThan(0);
      expect(stored).toBe(5);
    } finally {
      closeAll(target.socket, flooder.socket);
    }
  });
});
