/**
 * The per-peer state of the client, loaded from the store on first use and cached: the session,
 * the sequence counters, the seen-id memory, and the in-memory parts the other components keep
 * per peer (the inbox's reorder buffer, mail kept for a retry). A conversation is touched only
 * under its peer's lock (KeyedLock); `invalidate` drops it after a failed write, so the next use
 * reloads what the store holds.
 */
import { IdentityPublicKey, wipe } from '@usm/crypto';
import {
  type AddressString,
  type MailItem,
  type MessageIdString,
  type Released,
  ReorderBuffer,
  SeenMessageIds,
  Session,
  parseAddress,
} from '@usm/protocol';
import {
  type ConversationMeta,
  type InboxEntry,
  decodeCounter,
  recvSeqKey,
  seenKey,
  sendSeqKey,
  sessionKey,
} from '../client-records.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { Runtime, TimerHandle } from '../runtime.js';
import type { ClientStore } from '../storage/client-store.js';

/** What inbox/app-delivery.ts keeps per peer. */
export interface InboxQueue {
  reorder: ReorderBuffer<InboxEntry>;
  /** Entries pushed into `reorder` and not released yet, by inbox key. */
  readonly held: Map<string, InboxEntry>;
  /** Released entries waiting for (or in) the app's handlers, in order. */
  readonly queue: Released<InboxEntry>[];
  delivering: boolean;
  /** Fires when the reorder buffer's oldest held entry times out. */
  timer: TimerHandle;
}

/** What receive/receive-pipeline.ts keeps per peer. */
export interface UndecryptedMail {
  /**
   * Mail from this peer that does not decrypt yet and is not acked (decrypt-failure.ts: 'keep'),
   * by message id: tried again after each message of the peer that decrypts.
   */
  readonly kept: Map<MessageIdString, MailItem>;
  /** Ids already reported as DECRYPT_PENDING (reported once per client run). */
  readonly reportedPending: Set<MessageIdString>;
  lastAutoResetAt: number;
}

export interface Conversation {
  readonly peer: AddressString;
  readonly peerIdentity: IdentityPublicKey;
  session: Session | undefined;
  meta: ConversationMeta;
  seen: SeenMessageIds;
  readonly inbox: InboxQueue;
  readonly undecrypted: UndecryptedMail;
}

export interface ConversationStoreOptions extends Runtime {
  readonly store: ClientStore;
  /** Message ids remembered per conversation. */
  readonly seenIdsPerConversation: number;
  /** How long a message ahead of a gap waits for it. @default the ReorderBuffer's */
  readonly reorderTimeoutMs?: number | undefined;
  /** A cached conversation is dropped: stop what runs for it (its reorder timer). */
  readonly onEvict?: (conv: Conversation) => void;
}

export class ConversationStore {
  readonly #o: ConversationStoreOptions;
  readonly #cache = new Map<string, Conversation>();

  constructor(options: ConversationStoreOptions) {
    this.#o = options;
  }

  /** The conversations loaded so far. */
  all(): IterableIterator<Conversation> {
    return this.#cache.values();
  }

  /** The conversation with `peer` if it is loaded. */
  peek(peer: AddressString): Conversation | undefined {
    return this.#cache.get(peer);
  }

  /**
   * Loads (once) the state of `peer`'s conversation. Call it under the peer's lock. A stored
   * record that does not load is reported (CORRUPT_STORE) and started afresh.
   */
  async get(peer: AddressString): Promise<Conversation> {
    const cached = this.#cache.get(peer);
    if (cached) return cached;
    const { store } = this.#o;
    const peerIdentity = new IdentityPublicKey(parseAddress(peer).identityKey);
    const [sessionBytes, sendBytes, recvBytes, seenBytes] = await Promise.all([
      store.get(sessionKey(peer)),
      store.get(sendSeqKey(peer)),
      store.get(recvSeqKey(peer)),
      store.get(seenKey(peer)),
    ]);
    let session: Session | undefined;
    if (sessionBytes) {
      try {
        session = await Session.fromPickle(sessionBytes);
        if (!session.peerIdentity.equals(peerIdentity)) throw new Error('session of another peer');
      } catch (err) {
        session = undefined;
        this.#o.report(
          new ClientError(
            ClientErrorCode.CorruptStore,
            'the stored session with this peer does not load; it is started afresh (resetSession)',
            { cause: err, peer },
          ),
        );
      } finally {
        wipe(sessionBytes);
      }
    }
    let meta: ConversationMeta = { sendNext: 0, recvNext: 0 };
    let seen = new SeenMessageIds(this.#o.seenIdsPerConversation);
    try {
      meta = {
        sendNext: sendBytes ? decodeCounter(sendBytes) : 0,
        recvNext: recvBytes ? decodeCounter(recvBytes) : 0,
      };
      if (seenBytes) seen = SeenMessageIds.decode(seenBytes);
    } catch (err) {
      this.#o.report(
        new ClientError(ClientErrorCode.CorruptStore, 'the stored conversation record does not load', {
          cause: err,
          peer,
        }),
      );
    }
    const conv: Conversation = {
      peer,
      peerIdentity,
      session,
      meta,
      seen,
      inbox: {
        reorder: this.newReorder(meta.recvNext),
        held: new Map(),
        queue: [],
        delivering: false,
        timer: undefined,
      },
      undecrypted: { kept: new Map(), reportedPending: new Set(), lastAutoResetAt: -Infinity },
    };
    this.#cache.set(peer, conv);
    return conv;
  }

  /** A reorder buffer that waits for sequence number `next` first. */
  newReorder(next: number): ReorderBuffer<InboxEntry> {
    return new ReorderBuffer<InboxEntry>({
      next,
      now: () => this.#o.clock.now(),
      ...(this.#o.reorderTimeoutMs === undefined ? {} : { timeoutMs: this.#o.reorderTimeoutMs }),
    });
  }

  /** Forgets the cached state of a conversation (after a failed write), so it reloads from the store. */
  invalidate(conv: Conversation): void {
    this.#o.onEvict?.(conv);
    if (this.#cache.get(conv.peer) === conv) this.#cache.delete(conv.peer);
  }
}
