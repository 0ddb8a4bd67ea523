import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import {
  type ClientResult,
  type MessageIdString,
  PayloadKind,
  ProtocolError,
  ProtocolErrorCode,
  Session,
  decodeEnvelope,
  formatMessageId,
  openApplicationPayload,
} from '@usm/protocol';
import { decodeCounter, recvSeqKey, sendSeqKey, sessionKey } from '../client-records.js';
import type { RelayConnection } from '../connection.js';
import { type Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { claimOf, newDevice } from '../fake-peers.test.js';
import { fakeRuntime } from '../fake-time.test.js';
import { KeyedLock } from '../locks.js';
import { Outbox } from '../outbox/outbox.js';
import { MemoryStore } from '../storage/memory-store.js';
import { CLAIM_ATTEMPTS, SendPipeline } from './send-pipeline.js';

beforeAll(async () => {
  await ready();
});

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return ClientError.is(err) ? err.code : `not a ClientError: ${String(err)}`;
  }
  return 'no error';
};

async function setup(maxEntries = 10, onQueued?: () => void) {
  const rt = fakeRuntime();
  const store = new MemoryStore();
  const me = newDevice(rt.clock);
  const bob = newDevice(rt.clock);
  const outbox = await Outbox.open(store, { clock: rt.clock, maxEntries });
  const conversations = new ConversationStore({ ...rt, store, seenIdsPerConversation: 10 });
  const claims: string[] = [];
  const restarts: [Conversation, number][] = [];
  let queued = 0;
  const connection = {
    connected: true,
    claimFails: 0,
    bundle: claimOf(bob),
    request: (async (event: string, payload: { address: string }) => {
      if (event !== 'prekeys:claim') throw new Error(`unexpected ${event}`);
      claims.push(payload.address);
      if (connection.claimFails > 0) {
        connection.claimFails--;
        throw new ClientError(ClientErrorCode.NotConnected, 'no reply in time');
      }
      return { bundle: connection.bundle } satisfies ClientResult<'prekeys:claim'>;
    }) as unknown as RelayConnection['request'],
  };
  const send = new SendPipeline({
    ...rt,
    identity: me.identity,
    address: me.address,
    conversations,
    locks: new KeyedLock(),
    outbox,
    connection,
    restartReceiving: (conv, recvNext) => void restarts.push([conv, recvNext]),
    onQueued: () => {
      queued++;
      onQueued?.();
    },
  });
  return {
    rt,
    store,
    me,
    bob,
    outbox,
    conversations,
    connection,
    claims,
    restarts,
    send,
    queued: () => queued,
  };
}

/** What the outbox holds, decrypted by the peer. */
async function deliveredTo(
  bob: ReturnType<typeof newDevice>,
  outbox: Outbox,
  me: ReturnType<typeof newDevice>,
) {
  const out = [];
  let session: Session | undefined;
  for (const entry of await outbox.due()) {
    const env = decodeEnvelope(entry.envelope);
    let plaintext: Uint8Array;
    if (!session) {
      const accepted = await Session.accept(bob.prekeys, env.ciphertext, me.identity.publicKey, env.id);
      session = accepted.session;
      plaintext = accepted.plaintext;
    } else {
      plaintext = (await session.decrypt(env.ciphertext, bob.prekeys, env.id)).plaintext;
    }
    out.push({ id: formatMessageId(env.id), payload: openApplicationPayload(plaintext) });
  }
  return out;
}

describe('SendPipeline', () => {
  it('first contact: claims the bundle, sets up the session, queues the envelope with the session and sendseq in one batch', async () => {
    const { rt, store, me, bob, outbox, send, claims, queued } = await setup();
    const sending = send.send(bob.address, 'hello');
    await rt.time.advance(0);
    expect(claims).toEqual([bob.address]);
    expect(outbox.size).toBe(1);
    expect(queued()).toBe(1);
    expect(await store.get(sessionKey(bob.address))).toBeDefined();
    expect(decodeCounter((await store.get(sendSeqKey(bob.address)))!)).toBe(1);
    const [sent] = await deliveredTo(bob, outbox, me);
    expect(sent!.payload).toEqual({
      kind: PayloadKind.Text,
      sequence: 0,
      sentAt: rt.time.now(),
      text: 'hello',
    });
    expect(send.settle(sent!.id as MessageIdString)).toBe(true);
    expect(await sending).toEqual({ id: sent!.id });
  });

  it('numbers messages in order and claims once per session', async () => {
    const { rt, me, bob, outbox, send, claims } = await setup();
    void send.send(bob.address, 'a');
    void send.send(bob.address, Uint8Array.of(1, 2));
    await rt.time.advance(0);
    expect(claims).toHaveLength(1);
    const sent = await deliveredTo(bob, outbox, me);
    expect(sent.map((s) => [s.payload.kind, s.payload.sequence])).toEqual([
      [PayloadKind.Text, 0],
      [PayloadKind.Bytes, 1],
    ]);
  });

  it('refuses bad arguments before touching anything (INVALID_ARGUMENT)', async () => {
    const { me, bob, send, outbox } = await setup();
    for (const [to, content] of [
      [42, 'x'],
      ['not an address', 'x'],
      [me.address, 'x'],
      [bob.address, 42],
      [bob.address, new Uint8Array(70_000)],
    ] as const) {
      expect(await codeOf(send.send(to, content))).toBe(ClientErrorCode.InvalidArgument);
    }
    expect(outbox.size).toBe(0);
  });

  it('needs a connection for a first contact; retries a claim that got no reply, CLAIM_ATTEMPTS times at most', async () => {
    const offline = await setup();
    offline.connection.connected = false;
    expect(await codeOf(offline.send.send(offline.bob.address, 'x'))).toBe(ClientErrorCode.NotConnected);
    expect(offline.claims).toEqual([]);

    const slow = await setup();
    slow.connection.claimFails = CLAIM_ATTEMPTS - 1;
    void slow.send.send(slow.bob.address, 'x');
    await slow.rt.time.advance(0);
    expect(slow.claims).toHaveLength(CLAIM_ATTEMPTS);
    expect(slow.outbox.size).toBe(1);

    const dead = await setup();
    dead.connection.claimFails = CLAIM_ATTEMPTS;
    expect(await codeOf(dead.send.send(dead.bob.address, 'x'))).toBe(ClientErrorCode.NotConnected);
    expect(dead.claims).toHaveLength(CLAIM_ATTEMPTS);
  });

  it('refuses a bundle of another address or one that does not verify (PROTOCOL_VIOLATION), nothing queued', async () => {
    const { bob, send, outbox, connection } = await setup();
    connection.bundle = claimOf(newDevice());
    expect(await codeOf(send.send(bob.address, 'x'))).toBe(ClientErrorCode.ProtocolViolation);
    const record = claimOf(bob).signedPrekey.record.slice();
    record[record.length - 1]! ^= 1;
    connection.bundle = { ...claimOf(bob), signedPrekey: { ...claimOf(bob).signedPrekey, record } };
    const err = await send.send(bob.address, 'x').catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.ProtocolViolation)).toBe(true);
    expect(ProtocolError.is((err as ClientError).cause, ProtocolErrorCode.BadSignature)).toBe(true);
    expect(outbox.size).toBe(0);
  });

  it('QUEUE_FULL at the outbox bound: no ratchet step is spent, nothing written', async () => {
    const { rt, store, bob, send } = await setup(1);
    void send.send(bob.address, 'fits');
    await rt.time.advance(0);
    const before = await store.get(sessionKey(bob.address));
    expect(await codeOf(send.send(bob.address, 'too many'))).toBe(ClientErrorCode.QueueFull);
    expect(await store.get(sessionKey(bob.address))).toEqual(before);
  });

  it('a message given up before its send call started waiting still rejects that call', async () => {
    const expired = new ClientError(ClientErrorCode.Expired, 'expired');
    let lastId: Uint8Array | undefined;
    // The pump settles the message as soon as it is queued, before `send` attached its wait.
    const { bob, send, outbox } = await setup(10, () => send.settle(formatMessageId(lastId!), expired));
    const enqueue = outbox.enqueue.bind(outbox);
    outbox.enqueue = (entry, extra) => {
      lastId = entry.messageId;
      return enqueue(entry, extra);
    };
    expect(await codeOf(send.send(bob.address, 'x'))).toBe(ClientErrorCode.Expired);
    expect(send.settle('x'.repeat(22) as MessageIdString)).toBe(false);
  });

  it('close rejects waiting sends with STORE_CLOSED', async () => {
    const { rt, bob, send } = await setup();
    const sending = send.send(bob.address, 'x');
    await rt.time.advance(0);
    send.close();
    expect(await codeOf(sending)).toBe(ClientErrorCode.StoreClosed);
  });

  it('resetSession: a new session, receiving restarts at 0, and a SessionReset numbered 0 with recvseq 0 in its batch', async () => {
    const { rt, store, me, bob, send, outbox, restarts, claims } = await setup();
    void send.send(bob.address, 'first');
    await rt.time.advance(0);
    await outbox.remove((await outbox.due())[0]!.messageId);
    const resetting = send.resetSession(bob.address);
    await rt.time.advance(0);
    expect(claims).toHaveLength(2);
    expect(restarts.map(([conv, n]) => [conv.peer, n])).toEqual([[bob.address, 0]]);
    expect(decodeCounter((await store.get(recvSeqKey(bob.address)))!)).toBe(0);
    const [reset] = await deliveredTo(bob, outbox, me);
    expect(reset!.payload).toMatchObject({ kind: PayloadKind.SessionReset, sequence: 0 });
    send.settle(reset!.id as MessageIdString);
    expect(await resetting).toEqual({ id: reset!.id });
  });
});
