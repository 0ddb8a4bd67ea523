/**
 * The send path: a payload becomes an envelope in the outbox, and `send` resolves once the relay
 * stored it.
 *
 *  - First contact (no session) or `resetSession`: claim the peer's prekey bundle (needs a
 *    connection; a claim without a reply in time is tried again) and set up a PQXDH session.
 *  - `enqueue`, under the peer's lock: take the conversation's next sequence number, pad and
 *    encrypt the payload, then write the advanced session, the new sequence number and the
 *    envelope into the outbox in ONE atomic batch before the first try. A failure leaves the
 *    cached conversation invalidated (memory was ahead of the store).
 *  - The outbox pump reports each message's outcome through `settle`: stored (resolve), expired
 *    or refused (reject).
 */
import { type IdentityKeyPair, wipe } from '@usm/crypto';
import {
  type AddressString,
  type ApplicationPayload,
  MAX_APPLICATION_BODY_BYTES,
  type MessageIdString,
  PayloadKind,
  ProtocolError,
  ProtocolErrorCode,
  SendSequence,
  Session,
  type SessionPrekeyBundle,
  asAddressString,
  bundleFromClaim,
  encodeEnvelope,
  formatMessageId,
  generateMessageId,
  parseAddress,
  sealApplicationPayload,
} from '@usm/protocol';
import { encodeCounter, recvSeqKey, sendSeqKey, sessionKey } from '../client-records.js';
import type { RelayRequests } from '../connection.js';
import type { Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { KeyedLock } from '../locks.js';
import type { Outbox } from '../outbox/outbox.js';
import { type Runtime, clientClosed } from '../runtime.js';
import type { StoreEntry, WriteBatch } from '../storage/client-store.js';

/** Tries of a `prekeys:claim` that got no reply in time, before `send` gives up (NOT_CONNECTED). */
export const CLAIM_ATTEMPTS = 3;

/** Makes the payload once its sequence number and send time are known. */
export type BuildPayload = (sequence: number, sentAt: number) => ApplicationPayload;

export interface SendPipelineOptions extends Runtime {
  readonly identity: IdentityKeyPair;
  /** This device's address (a peer may not be it). */
  readonly address: AddressString;
  readonly conversations: ConversationStore;
  readonly locks: KeyedLock;
  readonly outbox: Outbox;
  readonly connection: RelayRequests;
  /** Restarts the receiving numbering of a conversation (inbox/app-delivery.ts). */
  readonly restartReceiving: (conv: Conversation, recvNext: number) => void;
  /** Something was queued: the outbox pump flushes. */
  readonly onQueued: () => void;
}

/** A `send` call's wait; the outcome is kept when it comes before the call started waiting. */
interface Waiter {
  outcome?: { error?: ClientError | undefined };
  resolve?: (value: { id: MessageIdString }) => void;
  reject?: (err: unknown) => void;
}

function invalid(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

/** `to` as a peer address, or INVALID_ARGUMENT (also for our own address `self`). */
export function checkPeer(to: unknown, self: AddressString): AddressString {
  if (typeof to !== 'string') throw invalid('peer address: expected a string');
  let peer: AddressString;
  try {
    peer = asAddressString(to);
  } catch (err) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'peer address: not a valid address string', {
      cause: err,
    });
  }
  if (peer === self) throw invalid('peer address: this is our own address');
  return peer;
}

export class SendPipeline {
  readonly #o: SendPipelineOptions;
  /** `send` calls waiting for the relay to store their message, by message id. */
  readonly #waiters = new Map<string, Waiter>();

  constructor(options: SendPipelineOptions) {
    this.#o = options;
  }

  /** MessengerClient.send: `content` (a string or bytes) to `to`; resolves once the relay stored it. */
  async send(to: unknown, content: unknown): Promise<{ id: MessageIdString }> {
    const peer = checkPeer(to, this.#o.address);
    let build: BuildPayload;
    if (typeof content === 'string') {
      build = (sequence, sentAt) => ({ kind: PayloadKind.Text, sequence, sentAt, text: content });
    } else if (content instanceof Uint8Array) {
      if (content.length > MAX_APPLICATION_BODY_BYTES) {
        throw invalid(`send: ${content.length} bytes, the limit is ${MAX_APPLICATION_BODY_BYTES}`);
      }
      const bytes = content.slice();
      build = (sequence, sentAt) => ({ kind: PayloadKind.Bytes, sequence, sentAt, bytes });
    } else {
      throw invalid('send: content must be a string or a Uint8Array');
    }
    const id = await this.#o.locks.run(peer, async () => {
      const conv = await this.#o.conversations.get(peer);
      if (!conv.session) await this.#newSetup(conv);
      return this.enqueue(conv, build, {}, true);
    });
    return this.#awaitStored(id);
  }

  /** MessengerClient.resetSession: a new session with `peerAddress`, announced by a SessionReset. */
  async resetSession(peerAddress: unknown): Promise<{ id: MessageIdString }> {
    const peer = checkPeer(peerAddress, this.#o.address);
    const id = await this.#o.locks.run(peer, async () => {
      const conv = await this.#o.conversations.get(peer);
      await this.#newSetup(conv);
      this.#o.restartReceiving(conv, 0);
      conv.meta.sendNext = 0;
      const recv: StoreEntry = [recvSeqKey(peer), encodeCounter(0)];
      return this.enqueue(
        conv,
        (sequence, sentAt) => ({ kind: PayloadKind.SessionReset, sequence, sentAt }),
        { put: [recv] },
        true,
      );
    });
    return this.#awaitStored(id);
  }

  /**
   * Encrypts the payload `build` makes with the conversation's session and queues it in the
   * outbox, with the advanced session and sequence in the same atomic batch (plus `extra`).
   * Under the peer's lock. `awaited`: a `send` call will wait for it. Returns the message id.
   */
  async enqueue(
    conv: Conversation,
    build: BuildPayload,
    extra: WriteBatch,
    awaited: boolean,
  ): Promise<MessageIdString> {
    const { outbox } = this.#o;
    const session = conv.session;
    if (!session) throw new ClientError(ClientErrorCode.InvalidArgument, 'no session with this peer');
    if (outbox.remaining <= 0) {
      throw new ClientError(
        ClientErrorCode.QueueFull,
        `the outbox is full (${outbox.size} messages wait for the relay); retry after some are delivered`,
        { peer: conv.peer },
      );
    }
    const sequence = new SendSequence(conv.meta.sendNext).take();
    const plaintext = sealApplicationPayload(build(sequence, this.#o.clock.now()));
    const idBytes = generateMessageId();
    const id = formatMessageId(idBytes);
    try {
      // The id is bound into the message's authentication (not sent twice): a relay that rewrites
      // it makes the message fail to decrypt instead of arriving under an id it never had.
      const ciphertext = await session.encrypt(plaintext, idBytes);
      const envelope = encodeEnvelope({ id: idBytes, recipient: parseAddress(conv.peer), ciphertext });
      conv.meta.sendNext = sequence + 1;
      const put: StoreEntry[] = [
        [sessionKey(conv.peer), await session.pickle()],
        [sendSeqKey(conv.peer), encodeCounter(conv.meta.sendNext)],
        ...(extra.put ?? []),
      ];
      if (awaited) this.#waiters.set(id, {});
      await outbox.enqueue(
        { messageId: idBytes, recipient: conv.peer, envelope },
        { put, delete: extra.delete ?? [] },
      );
    } catch (err) {
      this.#waiters.delete(id);
      // The session advanced in memory but not in the store: reload it from the store.
      this.#o.conversations.invalidate(conv);
      throw err;
    } finally {
      wipe(plaintext);
    }
    this.#o.onQueued();
    return id;
  }

  /**
   * The outcome of a queued message: stored (no `error`) or given up (`error`). Settles the `send`
   * call waiting for it; returns false when none waits (a receipt, or one queued by an earlier run).
   */
  settle(id: MessageIdString, error?: ClientError): boolean {
    const waiter = this.#waiters.get(id);
    if (!waiter) return false;
    if (!waiter.resolve || !waiter.reject) {
      waiter.outcome = { error };
      return true;
    }
    this.#waiters.delete(id);
    if (error) waiter.reject(error);
    else waiter.resolve({ id });
    return true;
  }

  /** The client closed: every waiting `send` rejects with STORE_CLOSED. */
  close(): void {
    const err = clientClosed('send');
    for (const waiter of this.#waiters.values()) waiter.reject?.(err);
    this.#waiters.clear();
  }

  #awaitStored(id: MessageIdString): Promise<{ id: MessageIdString }> {
    return new Promise((resolve, reject) => {
      if (this.#o.isClosed()) return reject(clientClosed('send'));
      const waiter = this.#waiters.get(id);
      if (!waiter) return resolve({ id });
      if (waiter.outcome) {
        this.#waiters.delete(id);
        return waiter.outcome.error ? reject(waiter.outcome.error) : resolve({ id });
      }
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
  }

  /** A new session setup with the conversation's peer (PQXDH, initiator side): first contact or reset. */
  async #newSetup(conv: Conversation): Promise<void> {
    const bundle = await this.#claim(conv.peer);
    try {
      if (conv.session) await conv.session.restart(this.#o.identity, bundle);
      else conv.session = Session.initiate(this.#o.identity, bundle, conv.peerIdentity);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.ProtocolViolation,
        `the prekey bundle the relay handed out for this peer is refused (${ProtocolError.is(err) ? err.code : 'invalid'}); nothing was sent`,
        { cause: err, peer: conv.peer },
      );
    }
  }

  /** Claims `peer`'s bundle; needs a connection. */
  async #claim(peer: AddressString): Promise<SessionPrekeyBundle> {
    const { connection } = this.#o;
    if (!connection.connected) {
      throw new ClientError(
        ClientErrorCode.NotConnected,
        'a first message to a peer needs a connection to the relay (to claim its prekeys); connect and retry',
        { peer },
      );
    }
    // A claim that got no reply in time is tried again while the connection holds (the relay
    // may have handed out a one-time prekey for it: one wasted key, no harm).
    let bundle;
    for (let attempt = 1; ; attempt++) {
      try {
        ({ bundle } = await connection.request('prekeys:claim', { address: peer }));
        break;
      } catch (err) {
        const retry = ClientError.is(err, ClientErrorCode.NotConnected) && connection.connected;
        if (!retry || attempt >= CLAIM_ATTEMPTS) throw err;
      }
    }
    try {
      if (bundle.address !== peer)
        throw new ProtocolError(ProtocolErrorCode.IdentityMismatch, 'bundle of another address');
      return bundleFromClaim(bundle);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.ProtocolViolation,
        "the relay's prekey bundle for this peer is not usable",
        { cause: err, peer },
      );
    }
  }
}
