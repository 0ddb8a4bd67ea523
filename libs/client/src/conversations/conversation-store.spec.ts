import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import { encodeCounter, recvSeqKey, sendSeqKey, sessionKey } from '../client-records.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { newDevice, sessionWith } from '../fake-peers.test.js';
import { fakeRuntime } from '../fake-time.test.js';
import { MemoryStore } from '../storage/memory-store.js';
import { type Conversation, ConversationStore } from './conversation-store.js';

beforeAll(async () => {
  await ready();
});

function setup(reorderTimeoutMs?: number) {
  const rt = fakeRuntime();
  const store = new MemoryStore();
  const evicted: Conversation[] = [];
  const conversations = new ConversationStore({
    ...rt,
    store,
    seenIdsPerConversation: 10,
    reorderTimeoutMs,
    onEvict: (conv) => void evicted.push(conv),
  });
  return { rt, store, conversations, evicted };
}

describe('ConversationStore', () => {
  it('starts a conversation nobody stored at zero, without a session, and caches it', async () => {
    const { conversations } = setup();
    const peer = newDevice().address;
    const conv = await conversations.get(peer);
    expect([conv.session, conv.meta, conv.inbox.reorder.next]).toEqual([
      undefined,
      { sendNext: 0, recvNext: 0 },
      0,
    ]);
    expect(await conversations.get(peer)).toBe(conv);
    expect(conversations.peek(peer)).toBe(conv);
    expect([...conversations.all()]).toEqual([conv]);
  });

  it('loads the stored session and counters; the reorder buffer waits for the stored recvNext', async () => {
    const { store, conversations } = setup();
    const me = newDevice();
    const peer = newDevice();
    await store.write({
      put: [
        [sessionKey(peer.address), await sessionWith(me, peer).pickle()],
        [sendSeqKey(peer.address), encodeCounter(4)],
        [recvSeqKey(peer.address), encodeCounter(9)],
      ],
    });
    const conv = await conversations.get(peer.address);
    expect(conv.session?.peerIdentity.equals(peer.identity.publicKey)).toBe(true);
    expect(conv.meta).toEqual({ sendNext: 4, recvNext: 9 });
    expect(conv.inbox.reorder.next).toBe(9);
  });

  it('reports a session that does not load, or is another peer’s, and starts afresh', async () => {
    const { rt, store, conversations } = setup();
    const me = newDevice();
    const peer = newDevice();
    const other = newDevice();
    await store.write({ put: [[sessionKey(peer.address), await sessionWith(me, other).pickle()]] });
    await store.write({ put: [[sessionKey(other.address), Uint8Array.of(1, 2, 3)]] });
    expect((await conversations.get(peer.address)).session).toBeUndefined();
    expect((await conversations.get(other.address)).session).toBeUndefined();
    expect(rt.reported.map((e) => [(e as ClientError).code, (e as ClientError).peer])).toEqual([
      [ClientErrorCode.CorruptStore, peer.address],
      [ClientErrorCode.CorruptStore, other.address],
    ]);
  });

  it('invalidate drops the cached state (its timers stop through onEvict) and the next get reloads', async () => {
    const { store, conversations, evicted } = setup();
    const peer = newDevice().address;
    const conv = await conversations.get(peer);
    conv.meta.sendNext = 5; // memory ahead of the store
    conversations.invalidate(conv);
    expect(evicted).toEqual([conv]);
    expect(conversations.peek(peer)).toBeUndefined();
    await store.write({ put: [[sendSeqKey(peer), encodeCounter(2)]] });
    expect((await conversations.get(peer)).meta.sendNext).toBe(2);
  });

  it('makes reorder buffers on the injected clock with the configured timeout', async () => {
    const { rt, conversations } = setup(500);
    const reorder = conversations.newReorder(3);
    expect(reorder.push(5, 'x' as never)).toEqual([]);
    expect(reorder.deadline).toBe(rt.time.now() + 500);
  });
});
