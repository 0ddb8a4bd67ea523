import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import {
  type AddressString,
  type ApplicationPayload,
  MAX_RECEIPT_IDS,
  type MessageIdString,
  PayloadKind,
  formatMessageId,
  generateMessageId,
} from '@usm/protocol';
import { RECEIPT_PREFIX, receiptKey } from '../client-records.js';
import type { Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { fakeRuntime } from '../fake-time.test.js';
import { KeyedLock } from '../locks.js';
import type { WriteBatch } from '../storage/client-store.js';
import { MemoryStore } from '../storage/memory-store.js';
import { RECEIPT_DELAY_MS, Receipts } from './receipts.js';

const peer = `${'P'.repeat(43)}.1` as AddressString;
const idOf = (n: number) => formatMessageId(new Uint8Array(16).fill(n)) as MessageIdString;

beforeAll(async () => {
  await ready();
});

function setup(hasSession = true) {
  const rt = fakeRuntime();
  const store = new MemoryStore();
  const conv = { peer, session: hasSession ? {} : undefined } as unknown as Conversation;
  const conversations = { get: async () => conv } as unknown as ConversationStore;
  const queued: { payload: ApplicationPayload; extra: WriteBatch }[] = [];
  let fail: ClientError | undefined;
  const receipts = new Receipts({
    ...rt,
    store,
    conversations,
    locks: new KeyedLock(),
    enqueue: async (_conv, build, extra) => {
      if (fail) throw fail;
      queued.push({ payload: build(queued.length, rt.clock.now()), extra });
      await store.write({ delete: extra.delete ?? [] });
      return idOf(200);
    },
  });
  const mark = (ids: number[]) =>
    store.write({ put: ids.map((n) => [receiptKey(peer, idOf(n)), new Uint8Array(0)] as const) });
  return { rt, store, receipts, queued, mark, failWith: (e: ClientError) => (fail = e) };
}

describe('Receipts', () => {
  it('gathers marks for RECEIPT_DELAY_MS, then queues one receipt carrying them and deletes the marks with it', async () => {
    const { rt, store, receipts, queued, mark } = setup();
    await mark([1]);
    receipts.schedule(peer);
    await mark([2]);
    receipts.schedule(peer);
    expect(rt.time.pending).toBe(1);
    await rt.time.advance(RECEIPT_DELAY_MS - 1);
    expect(queued).toEqual([]);
    await rt.time.advance(1);
    expect(queued).toHaveLength(1);
    const { payload, extra } = queued[0]!;
    expect(payload.kind).toBe(PayloadKind.DeliveryReceipt);
    expect(
      payload.kind === PayloadKind.DeliveryReceipt && payload.messageIds.map((m) => formatMessageId(m)),
    ).toEqual([idOf(1), idOf(2)]);
    expect(extra.delete).toEqual([receiptKey(peer, idOf(1)), receiptKey(peer, idOf(2))]);
    expect(await store.list(RECEIPT_PREFIX)).toEqual([]);
  });

  it(`splits more than MAX_RECEIPT_IDS (${MAX_RECEIPT_IDS}) marks into several receipts`, async () => {
    const { rt, receipts, queued, store } = setup();
    const ids = Array.from({ length: MAX_RECEIPT_IDS + 3 }, () => formatMessageId(generateMessageId()));
    await store.write({ put: ids.map((id) => [receiptKey(peer, id), new Uint8Array(0)] as const) });
    receipts.schedule(peer);
    await rt.time.advance(RECEIPT_DELAY_MS);
    expect(queued.map((q) => q.extra.delete?.length)).toEqual([MAX_RECEIPT_IDS, 3]);
  });

  it('keeps the marks while the peer has no session, and when the outbox is full (not reported)', async () => {
    const noSession = setup(false);
    await noSession.mark([1]);
    noSession.receipts.schedule(peer);
    await noSession.rt.time.advance(RECEIPT_DELAY_MS);
    expect(noSession.queued).toEqual([]);
    expect(await noSession.store.list(RECEIPT_PREFIX)).toHaveLength(1);

    const full = setup();
    full.failWith(new ClientError(ClientErrorCode.QueueFull, 'full'));
    await full.mark([1]);
    full.receipts.schedule(peer);
    await full.rt.time.advance(RECEIPT_DELAY_MS);
    expect(await full.store.list(RECEIPT_PREFIX)).toHaveLength(1);
    expect(full.rt.reported).toEqual([]);
  });

  it('restore picks up marks a previous run left; close stops the timers', async () => {
    const { rt, receipts, queued, mark } = setup();
    await mark([7]);
    await receipts.restore();
    expect(rt.time.pending).toBe(1);
    receipts.close();
    expect(rt.time.pending).toBe(0);
    await rt.time.advance(RECEIPT_DELAY_MS);
    expect(queued).toEqual([]);
  });
});
