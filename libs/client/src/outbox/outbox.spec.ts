import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ready } from '@usm/crypto';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { ClientStore, WriteBatch } from '../storage/client-store.js';
import { MemoryStore } from '../storage/memory-store.js';
import { NodeFileStore } from '../storage/node-file-store.js';
import { OUTBOX_DEFAULTS, Outbox, type OutboxOptions } from './outbox.js';

const T0 = 1_800_000_000_000;
const bytes = (s: string) => new TextEncoder().encode(s);
const id = (n: number) => new Uint8Array(16).fill(n);
const names = (entries: { envelope: Uint8Array }[]) =>
  entries.map((e) => new TextDecoder().decode(e.envelope));

class FakeClock {
  t = T0;
  now() {
    return this.t;
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return ClientError.is(err) ? err.code : `not a ClientError: ${String(err)}`;
  }
  return 'no error';
}

async function setup(options: OutboxOptions = {}, store: ClientStore = new MemoryStore()) {
  const clock = new FakeClock();
  const outbox = await Outbox.open(store, { clock, ...options });
  const put = (n: number, recipient: string, extra?: WriteBatch, expiresAt?: number) =>
    outbox.enqueue({ messageId: id(n), recipient, envelope: bytes(`${recipient}#${n}`), expiresAt }, extra);
  return { store, clock, outbox, put };
}

/** A store whose writes fail while `failing` is set, as a full disk would. */
class FlakyStore extends MemoryStore {
  failing = false;
  override async write(batch: WriteBatch): Promise<void> {
    if (this.failing) throw new ClientError(ClientErrorCode.StorageFailed, 'disk full (test)');
    return super.write(batch);
  }
}

describe('Outbox: enqueue', () => {
  it('queues an entry and the caller’s ratchet state in one write', async () => {
    const { store, outbox, put } = await setup();
    const entry = await put(1, 'bob', { put: [['ratchet/bob', bytes('state-1')]] });
    expect(entry).toEqual({
      messageId: id(1),
      recipient: 'bob',
      envelope: bytes('bob#1'),
      attempts: 0,
      nextAttemptAt: T0,
      expiresAt: T0 + OUTBOX_DEFAULTS.ttlMs,
      enqueuedAt: T0,
    });
    expect(new TextDecoder().decode(await store.get('ratchet/bob'))).toBe('state-1');
    expect(outbox.size).toBe(1);
    expect(outbox.has(id(1))).toBe(true);
    expect(OUTBOX_DEFAULTS).toEqual({ prefix: 'outbox/', maxEntries: 1000, ttlMs: 30 * 24 * 3600 * 1000 });
  });

  it('writes nothing at all when the store fails: no entry, no ratchet state', async () => {
    const store = new FlakyStore();
    const { outbox, put } = await setup({}, store);
    store.failing = true;
    expect(await codeOf(put(1, 'bob', { put: [['ratchet/bob', bytes('state-1')]] }))).toBe(
      ClientErrorCode.StorageFailed,
    );
    expect(outbox.size).toBe(0);
    expect(await store.list('')).toEqual([]);
    store.failing = false;
    await put(1, 'bob');
    expect(outbox.size).toBe(1);
  });

  it('QUEUE_FULL at the limit, writing nothing (not even the extra operations); room again after a removal', async () => {
    const { store, outbox, put } = await setup({ maxEntries: 3 });
    await put(1, 'bob');
    await put(2, 'bob');
    await put(3, 'carol');
    expect(outbox.remaining).toBe(0);
    let error: unknown;
    try {
      await put(4, 'bob', { put: [['ratchet/bob', bytes('advanced')]] });
    } catch (err) {
      error = err;
    }
    expect(ClientError.is(error, ClientErrorCode.QueueFull)).toBe(true);
    expect((error as Error).message).toBe(
      'outbox: 3 messages are waiting, the limit (maxEntries): wait until some are delivered or expire, or raise maxEntries',
    );
    expect(await store.get('ratchet/bob')).toBeUndefined();
    expect(outbox.size).toBe(3);
    expect(await outbox.remove(id(1))).toBe(true);
    await put(4, 'bob');
    expect(names(await outbox.due())).toEqual(['bob#2', 'carol#3', 'bob#4']);
  });

  it('refuses bad entries with INVALID_ARGUMENT, and a past expiry with EXPIRED', async () => {
    const { outbox, put, clock } = await setup();
    await put(1, 'bob');
    const enqueue = (e: Record<string, unknown>, extra?: WriteBatch) =>
      outbox.enqueue({ messageId: id(9), recipient: 'bob', envelope: bytes('x'), ...e } as never, extra);
    expect(await codeOf(enqueue({ messageId: new Uint8Array(15) }))).toBe(ClientErrorCode.InvalidArgument);
    expect(await codeOf(enqueue({ messageId: id(1) }))).toBe(ClientErrorCode.InvalidArgument); // already queued
    expect(await codeOf(enqueue({ recipient: '' }))).toBe(ClientErrorCode.InvalidArgument);
    expect(await codeOf(enqueue({ envelope: new Uint8Array(0) }))).toBe(ClientErrorCode.InvalidArgument);
    expect(await codeOf(enqueue({ expiresAt: Number.NaN }))).toBe(ClientErrorCode.InvalidArgument);
    expect(await codeOf(enqueue({}, { delete: ['outbox/m/0000000000000000'] }))).toBe(
      ClientErrorCode.InvalidArgument,
    );
    expect(await codeOf(enqueue({ expiresAt: clock.t }))).toBe(ClientErrorCode.Expired);
    expect(outbox.size).toBe(1);
  });

  it('never puts the recipient or the message id into a key name', async () => {
    const { store, put } = await setup();
    await put(0xab, 'alice@relay.example.org');
    const keys = (await store.list('')).map(([k]) => k);
    expect(keys).toEqual(['outbox/b/0000000000000000', 'outbox/m/0000000000000000']);
  });
});

describe('Outbox: due, in order', () => {
  it('hands out entries oldest first across recipients', async () => {
    const { outbox, put } = await setup();
    await put(1, 'bob');
    await put(2, 'carol');
    await put(3, 'bob');
    await put(4, 'dave');
    await put(5, 'carol');
    expect(names(await outbox.due())).toEqual(['bob#1', 'carol#2', 'bob#3', 'dave#4', 'carol#5']);
  });

  it('keeps a recipient’s later entries behind an earlier one that is waiting (head-of-line blocking)', async () => {
    const { outbox, put, clock } = await setup({ retry: { random: () => 0.5 } });
    await put(1, 'bob');
    await put(2, 'carol');
    await put(3, 'bob');
    const [marked] = await outbox.markAttempt(id(1));
    expect(marked!.nextAttemptAt).toBe(T0 + 250);
    expect(names(await outbox.due())).toEqual(['carol#2']);
    clock.t = T0 + 249;
    expect(names(await outbox.due())).toEqual(['carol#2']);
    clock.t = T0 + 250;
    expect(names(await outbox.due())).toEqual(['bob#1', 'carol#2', 'bob#3']);
    expect(names(await outbox.due(T0))).toEqual(['carol#2']); // an explicit `now` wins over the clock
  });

  it('does not hand out or block behind an expired entry', async () => {
    const { outbox, put } = await setup();
    await put(1, 'bob', undefined, T0 + 100);
    await put(2, 'bob');
    expect(names(await outbox.due(T0 + 99))).toEqual(['bob#1', 'bob#2']);
    expect(names(await outbox.due(T0 + 100))).toEqual(['bob#2']);
  });
});

describe('Outbox: attempts and backoff', () => {
  it('counts attempts and spaces them by capped exponential backoff with full jitter', async () => {
    const { outbox, put, clock } = await setup({ retry: { random: () => 1 - Number.EPSILON } });
    await put(1, 'bob');
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      const [m] = await outbox.markAttempt(id(1));
      expect(m!.attempts).toBe(i + 1);
      delays.push(m!.nextAttemptAt - clock.t);
      clock.t = m!.nextAttemptAt;
    }
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
    const zero = await setup({ retry: { random: () => 0 } });
    await zero.put(1, 'bob');
    const [m] = await zero.outbox.markAttempt(id(1));
    expect(m!.nextAttemptAt).toBe(T0);
  });

  it('draws once per call, so entries marked together are retried together; unknown ids are skipped', async () => {
    const draws = [0.5, 0.1];
    const { outbox, put } = await setup({ retry: { random: () => draws.shift()! } });
    await put(1, 'bob');
    await put(2, 'bob');
    const marked = await outbox.markAttempt([id(1), id(2), id(7), id(1)]);
    expect(marked.map((m) => [m.messageId[0], m.attempts, m.nextAttemptAt])).toEqual([
      [1, 1, T0 + 250],
      [2, 1, T0 + 250],
    ]);
    expect(draws).toEqual([0.1]);
    expect(await outbox.markAttempt(id(7))).toEqual([]);
  });

  it('rescheduleAll makes everything due now; nextWakeAt tells when to look again', async () => {
    const { outbox, put, clock } = await setup({ retry: { random: () => 0.5 } });
    expect(outbox.nextWakeAt()).toBeUndefined();
    await put(1, 'bob', undefined, T0 + 10_000);
    await put(2, 'carol');
    await outbox.markAttempt([id(1), id(2)]);
    expect(outbox.nextWakeAt()).toBe(T0 + 250);
    clock.t = T0 + 100;
    expect(await outbox.due()).toEqual([]);
    await outbox.rescheduleAll();
    expect(names(await outbox.due())).toEqual(['bob#1', 'carol#2']);
    expect(outbox.nextWakeAt()).toBe(T0 + 100);
  });
});

describe('Outbox: remove and expire', () => {
  it('removes on ack (with extra operations in the same write), and a second ack is harmless', async () => {
    const { store, outbox, put } = await setup();
    await put(1, 'bob');
    expect(await outbox.remove(id(1), { put: [['sent/1', bytes('')]] })).toBe(true);
    expect(await outbox.remove(id(1))).toBe(false);
    expect(outbox.size).toBe(0);
    expect((await store.list('')).map(([k]) => k)).toEqual(['sent/1']);
  });

  it('keeps the entry when the removal cannot be written', async () => {
    const store = new FlakyStore();
    const { outbox, put } = await setup({}, store);
    await put(1, 'bob');
    store.failing = true;
    expect(await codeOf(outbox.remove(id(1)))).toBe(ClientErrorCode.StorageFailed);
    expect(outbox.has(id(1))).toBe(true);
    store.failing = false;
    expect(names(await outbox.due())).toEqual(['bob#1']);
  });

  it('expire removes and returns every expired entry in order, so each can be reported', async () => {
    const { store, outbox, put, clock } = await setup();
    await put(1, 'bob', undefined, T0 + 100);
    await put(2, 'carol');
    await put(3, 'dave', undefined, T0 + 50);
    expect(await outbox.expire(T0 + 49)).toEqual([]);
    clock.t = T0 + 100;
    const expired = await outbox.expire();
    expect(expired.map((e) => [e.recipient, e.messageId[0], e.expiresAt])).toEqual([
      ['bob', 1, T0 + 100],
      ['dave', 3, T0 + 50],
    ]);
    expect(names(expired)).toEqual(['bob#1', 'dave#3']);
    expect(outbox.size).toBe(1);
    expect((await store.list('outbox/')).length).toBe(2); // carol's metadata and envelope only
    expect(await outbox.expire()).toEqual([]);
  });
});

describe('Outbox: restarts', () => {
  it('restores the queue, its order and its schedule from the store', async () => {
    const store = new MemoryStore();
    const first = await setup({ retry: { random: () => 0.5 } }, store);
    for (const [n, r] of [
      [1, 'bob'],
      [2, 'carol'],
      [3, 'bob'],
      [4, 'dave'],
    ] as const)
      await first.put(n, r);
    await first.outbox.markAttempt(id(3));
    await first.outbox.remove(id(2));

    const second = await setup({}, store);
    expect(second.outbox.size).toBe(3);
    const all = await second.outbox.due(T0 + 1000);
    expect(names(all)).toEqual(['bob#1', 'bob#3', 'dave#4']);
    expect(all.map((e) => e.attempts)).toEqual([0, 1, 0]);
    expect(all[1]!.nextAttemptAt).toBe(T0 + 250);
    await second.put(5, 'bob');
    expect(names(await second.outbox.due(T0 + 1000))).toEqual(['bob#1', 'bob#3', 'dave#4', 'bob#5']);
  });

  describe('on the encrypted file store', () => {
    let root: string;
    beforeAll(async () => {
      await ready();
      root = await mkdtemp(join(tmpdir(), 'usm-outbox-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('comes back in order after the process restarts', async () => {
      const options = {
        directory: join(root, 'a'),
        passphrase: 'pw',
        kdf: { iterations: 1, memoryKiB: 1024 },
      };
      const store = await NodeFileStore.open(options);
      const first = await setup({}, store);
      for (let n = 1; n <= 30; n++)
        await first.put(n, n % 3 === 0 ? 'carol' : 'bob', { put: [['ratchet', id(n)]] });
      for (let n = 1; n <= 30; n += 4) await first.outbox.remove(id(n));
      await store.close();

      const reopened = await NodeFileStore.open(options);
      const second = await setup({}, reopened);
      const expected = Array.from({ length: 30 }, (_, i) => i + 1)
        .filter((n) => (n - 1) % 4 !== 0)
        .map((n) => `${n % 3 === 0 ? 'carol' : 'bob'}#${n}`);
      expect(names(await second.outbox.due())).toEqual(expected);
      expect(await reopened.get('ratchet')).toEqual(id(30));
      await reopened.close();
    });
  });

  it('CORRUPT_STORE when an entry in the store is not one the outbox wrote', async () => {
    const store = new MemoryStore();
    await store.write({ put: [['outbox/m/0000000000000000', bytes('garbage')]] });
    expect(await codeOf(Outbox.open(store))).toBe(ClientErrorCode.CorruptStore);
    const other = new MemoryStore();
    await other.write({ put: [['outbox/m/not-a-number', bytes('x')]] });
    expect(await codeOf(Outbox.open(other))).toBe(ClientErrorCode.CorruptStore);
  });

  it('CORRUPT_STORE when an entry lost its envelope', async () => {
    const { store, outbox, put } = await setup();
    await put(1, 'bob');
    await store.write({ delete: ['outbox/b/0000000000000000'] });
    expect(await codeOf(outbox.due())).toBe(ClientErrorCode.CorruptStore);
  });
});
