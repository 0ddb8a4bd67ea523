import { describe, expect, it } from '@jest/globals';
import {
  MAX_SEND_BATCH_BYTES,
  type MessageIdString,
  ProtocolErrorCode,
  type SendResult,
  formatMessageId,
} from '@usm/protocol';
import type { RelayConnection } from '../connection.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { fakeRuntime } from '../fake-time.test.js';
import { MemoryStore } from '../storage/memory-store.js';
import { OFFLINE_EXPIRY_CHECK_MS, OutboxPump } from './outbox-pump.js';
import { Outbox } from './outbox.js';

type Status = SendResult['results'][number];
const idOf = (n: number) => {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(0, n);
  return id;
};

const stored = (): Status => ({ status: 'stored', id: 'A'.repeat(22) as MessageIdString });

async function setup(answer: (envelope: Uint8Array) => Status = stored) {
  const rt = fakeRuntime();
  const outbox = await Outbox.open(new MemoryStore(), {
    clock: rt.clock,
    ttlMs: 60_000,
    retry: { baseMs: 1_000, capMs: 1_000, random: () => 0.5 },
  });
  const requests: number[] = [];
  const settled: [MessageIdString, ClientErrorCode | undefined][] = [];
  const waiting = new Set<string>();
  const connection = {
    connected: true,
    failWith: undefined as ClientError | undefined,
    request: (async (event: string, payload: { envelopes: Uint8Array[] }) => {
      if (event !== 'send') throw new Error(`unexpected ${event}`);
      requests.push(payload.envelopes.length);
      if (connection.failWith) throw connection.failWith;
      return { results: payload.envelopes.map(answer) };
    }) as unknown as RelayConnection['request'],
  };
  const pump = new OutboxPump({
    ...rt,
    outbox,
    connection,
    settle: (id, err) => {
      settled.push([id, err?.code]);
      return waiting.has(id);
    },
  });
  const queue = async (n: number, bytes = 100) => {
    for (let i = 0; i < n; i++) {
      await outbox.enqueue({
        messageId: idOf(i),
        recipient: 'bob',
        envelope: new Uint8Array(bytes).fill(i % 256),
      });
    }
  };
  return { rt, outbox, pump, requests, settled, waiting, connection, queue };
}

describe('OutboxPump', () => {
  it('sends what is due in requests within the count limit; stored messages leave the outbox and settle', async () => {
    const { outbox, pump, requests, settled, queue } = await setup();
    await queue(120);
    await pump.flush();
    expect(requests).toEqual([50, 50, 20]);
    expect(outbox.size).toBe(0);
    expect(settled).toHaveLength(120);
    expect(settled[0]).toEqual([formatMessageId(idOf(0)), undefined]);
  });

  it('keeps each request within MAX_SEND_BATCH_BYTES', async () => {
    const { pump, requests, queue } = await setup();
    const big = Math.floor(MAX_SEND_BATCH_BYTES / 3) + 1;
    await queue(5, big);
    await pump.flush();
    expect(requests).toEqual([2, 2, 1]);
  });

  it('a refusal no retry can fix removes the message and rejects its send (reported when none waits)', async () => {
    const refused = (e: Uint8Array): Status =>
      e[0] === 0
        ? { status: 'rejected', code: ProtocolErrorCode.TooLarge, message: 'too big' }
        : { status: 'rejected', code: ProtocolErrorCode.Malformed, message: 'bad' };
    const { rt, outbox, pump, settled, waiting, queue } = await setup(refused);
    await queue(2);
    waiting.add(formatMessageId(idOf(0)));
    await pump.flush();
    expect(outbox.size).toBe(0);
    expect(settled.map(([, code]) => code)).toEqual([ClientErrorCode.RelayError, ClientErrorCode.RelayError]);
    expect(rt.reported.map((e) => (e as ClientError).messageId)).toEqual([formatMessageId(idOf(1))]);
  });

  it('a refusal a retry may fix stays queued and is sent again when the outbox says it is due', async () => {
    let limited = true;
    const { rt, outbox, pump, requests, queue } = await setup(() =>
      limited ? { status: 'rejected', code: ProtocolErrorCode.RateLimited, message: 'slow down' } : stored(),
    );
    await queue(1);
    await pump.flush();
    expect(outbox.size).toBe(1);
    expect(rt.time.delays()).toEqual([500]);
    limited = false;
    await rt.time.advance(500);
    expect(requests).toEqual([1, 1]);
    expect(outbox.size).toBe(0);
    expect(rt.time.pending).toBe(0);
  });

  it('a request that fails for want of a connection is not reported; other failures are', async () => {
    const { rt, outbox, pump, connection, queue } = await setup();
    await queue(1);
    connection.failWith = new ClientError(ClientErrorCode.NotConnected, 'dropped');
    await pump.flush();
    expect(rt.reported).toEqual([]);
    connection.failWith = new ClientError(ClientErrorCode.RelayError, 'refused');
    await rt.time.advance(500);
    expect(rt.reported.map((e) => (e as ClientError).code)).toEqual([ClientErrorCode.RelayError]);
    expect(outbox.size).toBe(1);
  });

  it('offline, it only wakes for expiry (at most every OFFLINE_EXPIRY_CHECK_MS) and reports EXPIRED', async () => {
    const { rt, outbox, pump, requests, settled, connection, queue } = await setup();
    connection.connected = false;
    await queue(1);
    await pump.flush();
    expect(requests).toEqual([]);
    expect(rt.time.delays()).toEqual([OFFLINE_EXPIRY_CHECK_MS]);
    await rt.time.advance(60_000);
    expect(outbox.size).toBe(0);
    expect(settled).toEqual([[formatMessageId(idOf(0)), ClientErrorCode.Expired]]);
    expect(rt.reported.map((e) => (e as ClientError).code)).toEqual([ClientErrorCode.Expired]);
  });

  it('resume makes every entry due at once after a reconnect; close stops the timer', async () => {
    const { rt, outbox, pump, requests, connection, queue } = await setup();
    connection.connected = false;
    await queue(2);
    await outbox.markAttempt([idOf(0), idOf(1)]);
    connection.connected = true;
    await pump.resume();
    expect(requests).toEqual([2]);
    await queue(1);
    connection.connected = false;
    await pump.flush();
    expect(rt.time.pending).toBe(1);
    pump.close();
    expect(rt.time.pending).toBe(0);
  });

  it('a flush asked for while one runs makes it go round once more', async () => {
    const { outbox, pump, requests, queue } = await setup();
    await queue(1);
    const first = pump.flush();
    await outbox.enqueue({ messageId: idOf(99), recipient: 'carol', envelope: Uint8Array.of(1) });
    await pump.flush();
    await first;
    expect(requests.reduce((a, b) => a + b, 0)).toBe(2);
    expect(outbox.size).toBe(0);
  });
});
