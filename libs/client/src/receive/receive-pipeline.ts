/**
 * The receive path for mail from the relay, one item at a time under its sender's lock:
 *  1. decode the envelope (it must name this device); an id in the conversation's seen-id memory
 *     is a redelivery: ack again, show nothing;
 *  2. decrypt with the session of the relay-stamped sender (a first contact must be a prekey
 *     message set up by exactly that identity). What does not decrypt goes by its error code
 *     (inbox/decrypt-failure.ts): what may still decrypt is kept, not acked;
 *  3. write ONE atomic batch: the new session, the seen ids, the inbox entry the payload makes
 *     (receive/payload-kinds.ts) and, when a one-time prekey was used, the prekey store;
 *  4. ack the relay (acks gather for one tick, then go in calls of up to MAX_ACKS_PER_CALL);
 *  5. hand the entry to app delivery (inbox/app-delivery.ts).
 * After a message of a peer decrypts, that peer's kept mail is tried again, oldest first.
 */
import { wipe } from '@usm/crypto';
import {
  type Address,
  type AddressString,
  type ApplicationPayload,
  MAX_ACKS_PER_CALL,
  type MailItem,
  type MessageIdString,
  type PrekeyStore,
  ProtocolError,
  ProtocolErrorCode,
  Session,
  addressEquals,
  asAddressString,
  decodeEnvelope,
  formatMessageId,
  openApplicationPayload,
  chunk,
} from '@usm/protocol';
import {
  type InboxEntry,
  encodeCounter,
  encodeInboxEntry,
  inboxKey,
  recvSeqKey,
  seenKey,
  sendSeqKey,
  sessionKey,
} from '../client-records.js';
import type { RelayRequests } from '../connection.js';
import type { Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { decryptFailureOutcome } from '../inbox/decrypt-failure.js';
import { byPosition } from '../inbox/mail-intake.js';
import type { KeyedLock } from '../locks.js';
import { type Runtime, type TimerHandle, reportUnlessOffline } from '../runtime.js';
import type { ClientStore, StoreEntry } from '../storage/client-store.js';
import { effectOf } from './payload-kinds.js';

/** Undecryptable mail per peer kept in memory for a retry (the relay keeps all of it). */
export const MAX_KEPT_PER_PEER = 200;
/** Ids per peer remembered as reported DECRYPT_PENDING, before that memory starts afresh. */
export const MAX_REPORTED_PENDING = 2_000;

export interface ReceivePipelineOptions extends Runtime {
  /** This device's address, parsed and as a string. */
  readonly self: Address;
  readonly address: AddressString;
  readonly store: ClientStore;
  readonly conversations: ConversationStore;
  readonly locks: KeyedLock;
  readonly connection: RelayRequests;
  readonly prekeys: PrekeyStore;
  /** Writes `put` with the prekey store in one batch (prekeys/prekey-upkeep.ts). */
  readonly writeWithPrekeys: (put: readonly StoreEntry[]) => Promise<void>;
  /** Hands a persisted inbox entry on (inbox/app-delivery.ts). */
  readonly push: (conv: Conversation, key: string, entry: InboxEntry) => void;
  /** The peer reset the session: receiving numbers from `recvNext` (inbox/app-delivery.ts). */
  readonly restartReceiving: (conv: Conversation, recvNext: number) => void;
  /** Starts a new session with `peer` (send-pipeline.ts). */
  readonly resetSession: (peer: AddressString) => Promise<unknown>;
  /** Least time between two automatic session resets with one peer. */
  readonly autoResetIntervalMs: number;
  /** Test hook: after the batch is durable, before the ack. */
  readonly afterPersist?: ((id: MessageIdString) => void | Promise<void>) | undefined;
}

type Outcome = 'decrypted' | 'kept' | 'done';

export class ReceivePipeline {
  readonly #o: ReceivePipelineOptions;
  readonly #acks = new Set<MessageIdString>();
  #ackTimer: TimerHandle;

  constructor(options: ReceivePipelineOptions) {
    this.#o = options;
  }

  /** Processes `mail`, each item under its sender's lock (in the order given per sender). */
  async receiveAll(mail: readonly MailItem[]): Promise<void> {
    await Promise.all(
      mail.map((item) =>
        this.#o.locks
          .run(item.sender, () => this.#receive(item))
          .catch((err: unknown) => this.#o.report(err)),
      ),
    );
  }

  /** Stops the ack timer (unsent acks mean redeliveries, which the seen-id memory absorbs). */
  close(): void {
    this.#o.scheduler.clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  /** One item; when it decrypted, the peer's kept mail is tried again until a round decrypts none. */
  async #receive(item: MailItem): Promise<void> {
    if ((await this.#receiveOne(item, false)) !== 'decrypted') return;
    const conv = this.#o.conversations.peek(item.sender);
    let progress = true;
    while (progress && conv && conv.undecrypted.kept.size > 0 && !this.#o.isClosed()) {
      progress = false;
      const kept = [...conv.undecrypted.kept.values()].sort(byPosition);
      for (const k of kept) if ((await this.#receiveOne(k, true)) === 'decrypted') progress = true;
    }
  }

  /** `retry`: an item of the peer's kept mail. */
  async #receiveOne(item: MailItem, retry: boolean): Promise<Outcome> {
    const { isClosed, clock } = this.#o;
    if (isClosed()) return 'done';
    const peer = item.sender;
    let envelope;
    try {
      envelope = decodeEnvelope(item.envelope);
      if (!addressEquals(envelope.recipient, this.#o.self)) {
        throw new ProtocolError(ProtocolErrorCode.Malformed, 'mail addressed to another device');
      }
      if (peer === this.#o.address)
        throw new ProtocolError(ProtocolErrorCode.Malformed, 'mail stamped with our own address');
      asAddressString(peer);
    } catch (err) {
      this.#o.report(
        new ClientError(
          ClientErrorCode.ProtocolViolation,
          'the relay delivered mail that is not ours to read; dropped',
          { cause: err, peer },
        ),
      );
      if (envelope) this.#ack(formatMessageId(envelope.id));
      return 'done';
    }
    const id = formatMessageId(envelope.id);
    const conv = await this.#o.conversations.get(peer);
    const { kept } = conv.undecrypted;
    if (conv.seen.has(envelope.id)) {
      kept.delete(id);
      this.#ack(id); // a redelivery (our ack was lost or late): ack again, show nothing
      return 'done';
    }
    // Fetched again while kept: it is tried when the peer's next message decrypts.
    if (!retry && kept.has(id)) return 'kept';
    let plaintext: Uint8Array;
    let prekeysChanged: boolean;
    const hadSession = conv.session !== undefined;
    try {
      if (conv.session) {
        const result = await conv.session.decrypt(envelope.ciphertext, this.#o.prekeys, envelope.id);
        plaintext = result.plaintext;
        prekeysChanged = result.startedNewSession;
      } else {
        // First contact: the relay-stamped sender must be the identity that set the session up.
        const accepted = await Session.accept(
          this.#o.prekeys,
          envelope.ciphertext,
          conv.peerIdentity,
          envelope.id,
        );
        conv.session = accepted.session;
        plaintext = accepted.plaintext;
        prekeysChanged = true;
      }
    } catch (err) {
      return this.#undecryptable(conv, item, id, err, hadSession);
    }
    kept.delete(id);
    let payload: ApplicationPayload | undefined;
    try {
      payload = openApplicationPayload(plaintext);
    } catch {
      payload = undefined;
    } finally {
      wipe(plaintext);
    }
    conv.seen.add(envelope.id);
    const put: StoreEntry[] = [
      [sessionKey(peer), await conv.session.pickle()],
      [seenKey(peer), conv.seen.encode()],
    ];
    const effect = payload ? effectOf(payload, { peer, id, receivedAt: clock.now() }) : {};
    const { entry } = effect;
    if (effect.restartAt !== undefined) {
      this.#o.restartReceiving(conv, effect.restartAt);
      conv.meta.sendNext = 0;
      put.push([sendSeqKey(peer), encodeCounter(0)], [recvSeqKey(peer), encodeCounter(conv.meta.recvNext)]);
    }
    const key = entry ? inboxKey(peer, entry.sequence, id) : undefined;
    if (entry && key) put.push([key, encodeInboxEntry(entry)]);
    try {
      // One-time prekeys were consumed: the prekey store goes into the same batch.
      if (prekeysChanged) await this.#o.writeWithPrekeys(put);
      else await this.#o.store.write({ put });
    } catch (err) {
      this.#o.conversations.invalidate(conv); // memory is ahead of the store: reload; the relay will redeliver
      throw err;
    }
    await this.#o.afterPersist?.(id);
    if (isClosed()) return 'done';
    this.#ack(id);
    if (payload === undefined) {
      this.#o.report(
        new ClientError(
          ClientErrorCode.DecryptFailed,
          'a message decrypted but its content does not decode; dropped',
          {
            peer,
            messageId: id,
          },
        ),
      );
    }
    if (entry && key) this.#o.push(conv, key, entry);
    return 'decrypted';
  }

  /**
   * Mail that does not decrypt, handled by its error code (inbox/decrypt-failure.ts): what may
   * still decrypt is NOT acked (the relay keeps it; it is kept here too, within a bound, for a
   * retry) and reported once as DECRYPT_PENDING; what never can is acked and reported as
   * DECRYPT_FAILED. Neither is remembered as seen, so a tampered copy cannot shadow the genuine
   * message with the same id. A first contact that is not a prekey message (NO_SESSION with no
   * session at all: our state was lost) starts an automatic reset.
   */
  #undecryptable(
    conv: Conversation,
    item: MailItem,
    id: MessageIdString,
    err: unknown,
    hadSession: boolean,
  ): Outcome {
    if (this.#o.isClosed()) return 'done';
    const outcome = decryptFailureOutcome(err, hadSession);
    const code = ProtocolError.is(err) ? err.code : 'unexpected';
    const { kept, reportedPending } = conv.undecrypted;
    if (outcome === 'keep') {
      if (kept.has(id) || kept.size < MAX_KEPT_PER_PEER) kept.set(id, item);
      if (!reportedPending.has(id)) {
        if (reportedPending.size >= MAX_REPORTED_PENDING) reportedPending.clear();
        reportedPending.add(id);
        this.#o.report(
          new ClientError(
            ClientErrorCode.DecryptPending,
            `a message from this peer does not decrypt yet (${code}); it stays at the relay and is tried again as more mail from this peer arrives`,
            { cause: err, peer: conv.peer, messageId: id },
          ),
        );
      }
      return 'kept';
    }
    kept.delete(id);
    this.#ack(id);
    if (outcome === 'ack-silently') return 'done';
    const reset = outcome === 'drop-and-reset';
    this.#o.report(
      new ClientError(
        ClientErrorCode.DecryptFailed,
        `a message from this peer does not decrypt (${code}); it was dropped` +
          (reset ? ': no session with this peer is stored, a new one is being set up' : ''),
        { cause: err, peer: conv.peer, messageId: id },
      ),
    );
    if (reset) this.#autoReset(conv);
    return 'done';
  }

  /** Resets a session the peer's messages no longer open, at most once per interval, not while one awaits a reply. */
  #autoReset(conv: Conversation): void {
    const now = this.#o.clock.now();
    const state = conv.undecrypted;
    if (
      !this.#o.connection.connected ||
      conv.session?.awaitingReply ||
      now - state.lastAutoResetAt < this.#o.autoResetIntervalMs
    )
      return;
    state.lastAutoResetAt = now;
    this.#o.resetSession(conv.peer).catch((err: unknown) => this.#o.report(err));
  }

  /** Acks gather until the next tick, then go in calls of up to MAX_ACKS_PER_CALL ids. */
  #ack(id: MessageIdString): void {
    this.#acks.add(id);
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = this.#o.scheduler.setTimeout(() => {
      this.#ackTimer = undefined;
      const ids = [...this.#acks];
      this.#acks.clear();
      for (const part of chunk(ids, { maxCount: MAX_ACKS_PER_CALL })) {
        // A lost ack only means a redelivery, which the seen-id memory absorbs.
        this.#o.connection
          .request('ack', { ids: part })
          .catch((err: unknown) => reportUnlessOffline(this.#o, err));
      }
    }, 0);
  }
}
