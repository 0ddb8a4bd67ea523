import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import type { AddressString, MessageIdString } from '@usm/protocol';
import {
  INBOX_PREFIX,
  type InboxEntry,
  RECEIPT_PREFIX,
  decodeCounter,
  encodeCounter,
  encodeInboxEntry,
  inboxKey,
  recvSeqKey,
} from '../client-records.js';
import { ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { newDevice } from '../fake-peers.test.js';
import { fakeRuntime } from '../fake-time.test.js';
import { KeyedLock } from '../locks.js';
import { MemoryStore } from '../storage/memory-store.js';
import { AppDelivery, type AppEvent, type AppListeners } from './app-delivery.js';

let peer: AddressString;

beforeAll(async () => {
  await ready();
  peer = newDevice().address;
});

const idOf = (n: number) => `${'m'.repeat(20)}${n.toString().padStart(2, '0')}` as MessageIdString;
const head = (sequence: number) => ({
  peer,
  id: idOf(sequence),
  sequence,
  sentAt: 1_000 + sequence,
  receivedAt: 2_000,
});
const textAt = (sequence: number): InboxEntry => ({ ...head(sequence), kind: 'text', text: `m${sequence}` });

/** The app: listeners that log what they got, as `<event> <what>`. */
class FakeApp implements AppListeners {
  readonly log: string[] = [];
  readonly got: unknown[] = [];
  readonly listening = new Set<AppEvent>();
  throwOn: string | undefined;

  count(event: AppEvent): number {
    return this.listening.has(event) ? 1 : 0;
  }

  async emit(event: AppEvent, value: unknown): Promise<unknown[]> {
    if (!this.listening.has(event)) return [];
    const v = value as { text?: string; kind?: unknown; id: string };
    const what = event === 'delivered' ? v.id : event === 'unsupported' ? `kind ${String(v.kind)}` : v.text!;
    this.log.push(`${event} ${what}`);
    this.got.push(value);
    return this.throwOn === what ? [new Error('handler failed')] : [];
  }
}

function setup(reorderTimeoutMs = 1_000, listening: AppEvent[] = ['message', 'delivered', 'unsupported']) {
  const rt = fakeRuntime();
  const store = new MemoryStore();
  const app = new FakeApp();
  for (const e of listening) app.listening.add(e);
  const handedOver: AddressString[] = [];
  let gaps = 0;
  const conversations = new ConversationStore({ ...rt, store, seenIdsPerConversation: 10, reorderTimeoutMs });
  const delivery = new AppDelivery({
    ...rt,
    store,
    conversations,
    locks: new KeyedLock(),
    app,
    onHandedOver: (p) => void handedOver.push(p),
    onGap: () => void gaps++,
  });
  /** Persists an entry (as the receive path does) and pushes it. */
  const receive = async (entry: InboxEntry) => {
    const conv = await conversations.get(peer);
    const key = inboxKey(peer, entry.sequence, entry.id);
    await store.write({ put: [[key, encodeInboxEntry(entry)]] });
    delivery.push(conv, key, entry);
  };
  return { rt, store, app, delivery, conversations, receive, handedOver, gaps: () => gaps };
}

describe('AppDelivery', () => {
  it('hands entries over in sequence order, then deletes each, stores recvNext and marks its receipt', async () => {
    const { rt, store, app, receive, handedOver } = setup();
    await receive(textAt(1));
    await receive(textAt(0));
    await rt.time.advance(0);
    expect(app.log).toEqual(['message m0', 'message m1']);
    expect(app.got[1]).toMatchObject({ from: peer, id: idOf(1), sequence: 1, late: false, skippedBefore: 0 });
    expect(await store.list(INBOX_PREFIX)).toEqual([]);
    expect(decodeCounter((await store.get(recvSeqKey(peer)))!)).toBe(2);
    expect((await store.list(RECEIPT_PREFIX)).map(([k]) => k.slice(-22))).toEqual([idOf(0), idOf(1)]);
    expect(handedOver).toEqual([peer, peer]);
  });

  it('an entry ahead of a gap waits reorderTimeoutMs on the clock, asks for a fetch, then goes with skippedBefore', async () => {
    const { rt, app, receive, gaps } = setup(1_000);
    await receive(textAt(0));
    await receive(textAt(2));
    await rt.time.advance(0);
    expect(app.log).toEqual(['message m0']);
    expect(gaps()).toBe(1);
    await rt.time.advance(999);
    expect(app.log).toEqual(['message m0']);
    await rt.time.advance(2);
    expect(app.log).toEqual(['message m0', 'message m2']);
    expect(app.got[1]).toMatchObject({ sequence: 2, skippedBefore: 1, late: false });
    await receive(textAt(1)); // after its gap was given up
    await rt.time.advance(0);
    expect(app.got[2]).toMatchObject({ sequence: 1, late: true });
  });

  it('an unsupported entry takes its place in the order (no gap), goes to `unsupported`, and gets no receipt', async () => {
    const { rt, store, app, receive, handedOver, gaps } = setup(60_000);
    await receive(textAt(0));
    await receive({ ...head(1), kind: 'unsupported', rawKind: 200 });
    await receive(textAt(2));
    await rt.time.advance(0);
    expect(app.log).toEqual(['message m0', 'unsupported kind 200', 'message m2']);
    const { peer: from, ...rest } = head(1);
    expect(app.got[1]).toEqual({ ...rest, from, kind: 200, late: false, skippedBefore: 0 });
    expect(gaps()).toBe(0);
    expect(rt.time.pending).toBe(0);
    expect((await store.list(RECEIPT_PREFIX)).map(([k]) => k.slice(-22))).toEqual([idOf(0), idOf(2)]);
    expect(handedOver).toHaveLength(2);
  });

  it('without a `message` listener, messages wait in the inbox but receipts go to `delivered`', async () => {
    const { rt, store, app, delivery, receive } = setup(1_000, ['delivered']);
    await receive(textAt(0));
    await receive({ ...head(1), kind: 'receipt', ids: [idOf(90), idOf(91)] });
    await rt.time.advance(0);
    expect(app.log).toEqual([`delivered ${idOf(90)}`, `delivered ${idOf(91)}`]);
    expect((await store.list(INBOX_PREFIX)).length).toBe(1);
    app.listening.add('message');
    delivery.listenerAdded('message');
    await rt.time.advance(0);
    expect(app.log.at(-1)).toBe('message m0');
    expect(await store.list(INBOX_PREFIX)).toEqual([]);
  });

  it('reports a listener that threw (HANDLER_FAILED) and still counts the entry as delivered', async () => {
    const { rt, store, app, receive } = setup();
    app.throwOn = 'm0';
    await receive(textAt(0));
    await rt.time.advance(0);
    expect(rt.reported.map((e) => [(e as ClientError).code, (e as ClientError).messageId])).toEqual([
      [ClientErrorCode.HandlerFailed, idOf(0)],
    ]);
    expect(await store.list(INBOX_PREFIX)).toEqual([]);
  });

  it('restore: entries released before a stop go first, in order, the rest through the reorder buffer', async () => {
    const { rt, store, app, delivery } = setup();
    await store.write({
      put: [
        [recvSeqKey(peer), encodeCounter(2)],
        ...[1, 0, 2, 4].map((n) => [inboxKey(peer, n, idOf(n)), encodeInboxEntry(textAt(n))] as const),
      ],
    });
    await delivery.restore();
    await rt.time.advance(0);
    expect(app.log).toEqual(['message m0', 'message m1', 'message m2']);
    await rt.time.advance(1_001);
    expect(app.log.at(-1)).toBe('message m4');
  });

  it('restart (a session reset): held entries go in order, then numbering starts again', async () => {
    const { rt, app, delivery, conversations, receive } = setup(60_000);
    await receive(textAt(3));
    await receive(textAt(2));
    await rt.time.advance(0);
    expect(app.log).toEqual([]);
    delivery.restart(await conversations.get(peer), 0);
    await rt.time.advance(0);
    expect(app.log).toEqual(['message m2', 'message m3']);
    expect(rt.time.pending).toBe(0);
    await receive(textAt(0));
    await rt.time.advance(0);
    expect(app.log.at(-1)).toBe('message m0');
  });

  it('close stops the reorder timers; nothing more is handed over', async () => {
    const { rt, app, delivery, receive } = setup();
    await receive(textAt(1));
    expect(rt.time.pending).toBe(1);
    rt.closed = true;
    delivery.close();
    expect(rt.time.pending).toBe(0);
    await receive(textAt(0));
    await rt.time.advance(5_000);
    expect(app.log).toEqual([]);
  });
});
