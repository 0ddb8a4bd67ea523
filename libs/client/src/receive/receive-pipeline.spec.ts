import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import {
  type AddressString,
  type MailItem,
  PayloadKind,
  ProtocolError,
  ProtocolErrorCode,
  encodeEnvelope,
  formatMessageId,
  generateMessageId,
  pad,
} from '@usm/protocol';
import {
  INBOX_PREFIX,
  type InboxEntry,
  PREKEYS_KEY,
  decodeCounter,
  seenKey,
  sendSeqKey,
  sessionKey,
} from '../client-records.js';
import type { RelayConnection } from '../connection.js';
import { type Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { type Device, mail, newDevice, sessionWith, text } from '../fake-peers.test.js';
import { fakeRuntime } from '../fake-time.test.js';
import { KeyedLock } from '../locks.js';
import type { WriteBatch } from '../storage/client-store.js';
import { MemoryStore } from '../storage/memory-store.js';
import { MAX_KEPT_PER_PEER, ReceivePipeline } from './receive-pipeline.js';

beforeAll(async () => {
  await ready();
});

class FlakyStore extends MemoryStore {
  failing = false;
  override async write(batch: WriteBatch): Promise<void> {
    if (this.failing) throw new ClientError(ClientErrorCode.StorageFailed, 'disk full (test)');
    return super.write(batch);
  }
}

function setup(bob: Device = newDevice()) {
  const rt = fakeRuntime();
  const store = new FlakyStore();
  const conversations = new ConversationStore({ ...rt, store, seenIdsPerConversation: 100 });
  const pushed: InboxEntry[] = [];
  const acked: string[][] = [];
  const resets: AddressString[] = [];
  const restarts: number[] = [];
  const order: string[] = [];
  const connection = {
    connected: true,
    request: (async (event: string, payload: { ids: string[] }) => {
      if (event !== 'ack') throw new Error(`unexpected ${event}`);
      acked.push(payload.ids);
      return { deleted: payload.ids.length };
    }) as unknown as RelayConnection['request'],
  };
  const pipeline = new ReceivePipeline({
    ...rt,
    self: bob.self,
    address: bob.address,
    store,
    conversations,
    locks: new KeyedLock(),
    connection,
    prekeys: bob.prekeys,
    writeWithPrekeys: async (put) => {
      order.push('persist with prekeys');
      await store.write({ put: [...put, [PREKEYS_KEY, await bob.prekeys.pickle()]] });
    },
    push: (_conv, _key, entry) => void pushed.push(entry),
    restartReceiving: (conv: Conversation, recvNext: number) => {
      restarts.push(recvNext);
      conv.meta.recvNext = recvNext;
    },
    resetSession: async (peer) => void resets.push(peer),
    autoResetIntervalMs: 60_000,
    afterPersist: () => void order.push('after persist'),
  });
  const receive = async (...items: MailItem[]) => {
    await pipeline.receiveAll(items);
    await rt.time.advance(0); // acks go on the next tick
  };
  return {
    rt,
    store,
    bob,
    conversations,
    pipeline,
    pushed,
    acked,
    resets,
    restarts,
    order,
    connection,
    receive,
  };
}

/** Alice's first message to Bob has been received: a session on both sides. */
async function talking() {
  const t = setup();
  const alice = newDevice();
  const session = sessionWith(alice, t.bob);
  const first = await mail(alice, session, t.bob, text(0, 'first'));
  await t.receive(first.item);
  return { ...t, alice, session, first };
}

const codes = (reported: unknown[]) => reported.map((e) => (e as ClientError).code);

describe('ReceivePipeline', () => {
  it('first contact: decrypts, persists session, seen ids, entry and prekeys in one batch, then acks and hands the entry on', async () => {
    const { rt, store, pushed, acked, order, alice, first } = await talking();
    expect(pushed).toEqual([
      expect.objectContaining({
        kind: 'text',
        text: 'first',
        sequence: 0,
        id: first.id,
        peer: alice.address,
      }),
    ]);
    expect(await store.get(sessionKey(alice.address))).toBeDefined();
    expect(await store.get(seenKey(alice.address))).toBeDefined();
    expect(await store.get(PREKEYS_KEY)).toBeDefined();
    expect((await store.list(INBOX_PREFIX)).length).toBe(1);
    expect(order).toEqual(['persist with prekeys', 'after persist']);
    expect(acked).toEqual([[first.id]]);
    expect(rt.reported).toEqual([]);
  });

  it('a redelivery is acked again and shown zero more times', async () => {
    const { pushed, acked, receive, first } = await talking();
    await receive(first.item);
    expect(pushed).toHaveLength(1);
    expect(acked).toEqual([[first.id], [first.id]]);
  });

  it('a kind this version does not know takes its sequence number as an `unsupported` entry, reported as nothing', async () => {
    const { rt, pushed, acked, receive, alice, session, bob } = await talking();
    const newer = await mail(alice, session, bob, {
      kind: 'unknown',
      rawKind: 200,
      sequence: 1,
      sentAt: 7,
      body: Uint8Array.of(1, 2, 3),
    });
    await receive(newer.item);
    expect(pushed[1]).toEqual({
      peer: alice.address,
      id: newer.id,
      receivedAt: rt.time.now(),
      kind: 'unsupported',
      rawKind: 200,
      sequence: 1,
      sentAt: 7,
    });
    expect(acked.at(-1)).toEqual([newer.id]);
    expect(rt.reported).toEqual([]);
  });

  it('content that decrypts but does not decode is acked and reported (DECRYPT_FAILED)', async () => {
    const { rt, pushed, acked, receive, alice, session, bob } = await talking();
    const idBytes = generateMessageId();
    const ciphertext = await session.encrypt(pad(Uint8Array.of(9, 9, 9)), idBytes);
    const item = {
      envelope: encodeEnvelope({ id: idBytes, recipient: bob.self, ciphertext }),
      sender: alice.address,
      receivedAt: 0,
      cursor: '50',
    };
    await receive(item);
    expect(pushed).toHaveLength(1);
    expect(acked.at(-1)).toEqual([formatMessageId(idBytes)]);
    expect(codes(rt.reported)).toEqual([ClientErrorCode.DecryptFailed]);
  });

  it('mail addressed to another device is dropped and acked (PROTOCOL_VIOLATION)', async () => {
    const { rt, pushed, acked, receive, alice, session } = await talking();
    const other = await mail(alice, session, newDevice(), text(1, 'not for bob'));
    await receive(other.item);
    expect(pushed).toHaveLength(1);
    expect(acked.at(-1)).toEqual([other.id]);
    expect(codes(rt.reported)).toEqual([ClientErrorCode.ProtocolViolation]);
  });

  it('a tampered copy is acked and reported, is not remembered as seen, and the genuine message still arrives', async () => {
    const { rt, pushed, receive, alice, session, bob } = await talking();
    const genuine = await mail(alice, session, bob, text(1, 'genuine'));
    const envelope = genuine.item.envelope.slice();
    envelope[envelope.length - 1]! ^= 1;
    await receive({ ...genuine.item, envelope });
    expect(codes(rt.reported)).toEqual([ClientErrorCode.DecryptFailed]);
    await receive(genuine.item);
    expect(pushed.map((e) => e.kind === 'text' && e.text)).toEqual(['first', 'genuine']);
  });

  it('mail that may decrypt later is kept, not acked, reported once, and tried again once later mail decrypts', async () => {
    const { rt, pushed, acked, receive, alice, session, bob, conversations } = await talking();
    const m1 = await mail(alice, session, bob, text(1, 'm1'));
    const m2 = await mail(alice, session, bob, text(2, 'm2'));
    const conv = conversations.peek(alice.address)!;
    const decrypt = conv.session!.decrypt.bind(conv.session!);
    let refuse = true;
    conv.session!.decrypt = (message, prekeys, context) => {
      if (refuse && formatMessageId(context!) === m1.id)
        throw new ProtocolError(ProtocolErrorCode.TooLarge, 'ahead');
      return decrypt(message, prekeys, context);
    };
    await receive(m1.item);
    await receive(m1.item); // fetched again while kept
    expect(codes(rt.reported)).toEqual([ClientErrorCode.DecryptPending]);
    expect(acked.flat()).not.toContain(m1.id);
    expect(conv.undecrypted.kept.size).toBe(1);
    refuse = false;
    await receive(m2.item);
    expect(pushed.map((e) => e.kind === 'text' && e.text)).toEqual(['first', 'm2', 'm1']);
    expect(acked.flat()).toEqual(expect.arrayContaining([m1.id, m2.id]));
    expect(conv.undecrypted.kept.size).toBe(0);
    expect(MAX_KEPT_PER_PEER).toBe(200);
  });

  it('a SessionReset restarts receiving after it and sending at 0, in the same batch', async () => {
    const { store, pushed, restarts, receive, alice, session, bob, conversations } = await talking();
    const conv = conversations.peek(alice.address)!;
    conv.meta.sendNext = 4;
    const reset = await mail(alice, session, bob, { kind: PayloadKind.SessionReset, sequence: 1, sentAt: 1 });
    await receive(reset.item);
    expect(restarts).toEqual([2]);
    expect(conv.meta.sendNext).toBe(0);
    expect(decodeCounter((await store.get(sendSeqKey(alice.address)))!)).toBe(0);
    expect(pushed).toHaveLength(1);
  });

  it('a message of a session this device lost is dropped and starts a reset, at most once per autoResetIntervalMs', async () => {
    const { alice, session, bob, conversations } = await talking();
    // Bob answers, so Alice's next messages are plain ratchet messages (no prekey header).
    const reply = await conversations.peek(alice.address)!.session!.encrypt(pad(Uint8Array.of(0)));
    await session.decrypt(reply, alice.prekeys);
    const lost = setup(bob); // Bob's state is gone; his keys are not
    const send = async (n: number) => (await mail(alice, session, bob, text(n, `m${n}`))).item;
    await lost.receive(await send(1));
    await lost.receive(await send(2));
    expect(codes(lost.rt.reported)).toEqual([ClientErrorCode.DecryptFailed, ClientErrorCode.DecryptFailed]);
    expect(lost.acked).toHaveLength(2);
    expect(lost.resets).toEqual([alice.address]);
    await lost.rt.time.advance(60_000);
    await lost.receive(await send(3));
    expect(lost.resets).toEqual([alice.address, alice.address]);
    lost.connection.connected = false;
    await lost.rt.time.advance(60_000);
    await lost.receive(await send(4));
    expect(lost.resets).toHaveLength(2); // a reset needs a connection
  });

  it('a batch that fails to write leaves nothing acked or handed on, and the conversation reloads', async () => {
    const { rt, store, pushed, acked, receive, alice, session, bob, conversations } = await talking();
    const m1 = await mail(alice, session, bob, text(1, 'm1'));
    store.failing = true;
    await receive(m1.item);
    expect(codes(rt.reported)).toEqual([ClientErrorCode.StorageFailed]);
    expect(conversations.peek(alice.address)).toBeUndefined();
    expect(acked).toHaveLength(1);
    store.failing = false;
    await receive(m1.item); // the relay's redelivery
    expect(pushed.map((e) => e.kind === 'text' && e.text)).toEqual(['first', 'm1']);
  });
});
