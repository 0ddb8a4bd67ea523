/**
 * Hands the local inbox to the application: exactly once and in order per conversation.
 *
 * A received entry (already persisted in `inbox/`) enters its conversation's ReorderBuffer; what
 * the buffer releases is queued and handed to the app's listeners one at a time. After the
 * listeners returned, ONE batch deletes the entry, stores the sequence number the app waits for
 * next (`recvseq/`) and, for a message, marks its receipt as due (receipts/receipts.ts). While an
 * entry waits for a gap, the buffer's deadline is on a timer and the sync loop is told to fetch
 * (the missing mail may be stored and never pushed). On `open`, stored entries go first.
 *
 * Each inbox entry kind is one row of KINDS: which event carries it, whether it waits for a
 * `message` listener, whether the sender gets a receipt for it.
 */
import type { AddressString, Released } from '@usm/protocol';
import type { MessengerClientEvents } from '../client-events.js';
import {
  INBOX_PREFIX,
  type InboxEntry,
  decodeInboxEntry,
  encodeCounter,
  inboxKey,
  peerOfKey,
  receiptKey,
  recvSeqKey,
} from '../client-records.js';
import type { Conversation, ConversationStore, InboxQueue } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { KeyedLock } from '../locks.js';
import type { Runtime } from '../runtime.js';
import type { ClientStore, StoreEntry } from '../storage/client-store.js';

/** The events the inbox is handed over through. */
export type AppEvent = 'message' | 'delivered' | 'unsupported';

/** The application's side: MessengerClient's listeners. */
export interface AppListeners {
  count(event: AppEvent): number;
  /** Calls the listeners of `event` in turn, awaiting each; returns what they threw. */
  emit<K extends AppEvent>(event: K, ...args: Parameters<MessengerClientEvents[K]>): Promise<unknown[]>;
}

export interface AppDeliveryOptions extends Runtime {
  readonly store: ClientStore;
  readonly conversations: ConversationStore;
  readonly locks: KeyedLock;
  readonly app: AppListeners;
  /** A message was handed over and its receipt marked as due. */
  readonly onHandedOver: (peer: AddressString) => void;
  /** A conversation waits for an earlier message. */
  readonly onGap: () => void;
}

interface KindRule<E extends InboxEntry> {
  /** The event that carries it. */
  readonly event: AppEvent;
  /** Waits for a `message` listener, in order with messages (else it goes when `event` has one). */
  readonly waitsForMessages: boolean;
  /** The sender gets a delivery receipt once it was handed over. */
  readonly receipt: boolean;
  handOver(entry: E, released: Released<InboxEntry>, app: AppListeners): Promise<unknown[]>;
}

const base = (e: InboxEntry, r: Released<InboxEntry>) => ({
  from: e.peer,
  id: e.id,
  sequence: e.sequence,
  sentAt: e.sentAt,
  receivedAt: e.receivedAt,
  late: r.late,
  skippedBefore: r.skippedBefore,
});

const KINDS: { readonly [K in InboxEntry['kind']]: KindRule<Extract<InboxEntry, { kind: K }>> } = {
  text: {
    event: 'message',
    waitsForMessages: true,
    receipt: true,
    handOver: (e, r, app) => app.emit('message', { ...base(e, r), kind: 'text', text: e.text }),
  },
  bytes: {
    event: 'message',
    waitsForMessages: true,
    receipt: true,
    handOver: (e, r, app) => app.emit('message', { ...base(e, r), kind: 'bytes', bytes: e.bytes.slice() }),
  },
  receipt: {
    event: 'delivered',
    waitsForMessages: false,
    receipt: false, // no receipt for a receipt
    handOver: async (e, _r, app) => {
      const errors: unknown[] = [];
      for (const id of e.ids) errors.push(...(await app.emit('delivered', { to: e.peer, id })));
      return errors;
    },
  },
  unsupported: {
    event: 'unsupported',
    waitsForMessages: true,
    // Its kind may be a control message of a newer version (as receipts are): no receipt.
    receipt: false,
    handOver: (e, r, app) => app.emit('unsupported', { ...base(e, r), kind: e.rawKind }),
  },
};

const ruleOf = (e: InboxEntry) => KINDS[e.kind] as KindRule<InboxEntry>;

export class AppDelivery {
  readonly #o: AppDeliveryOptions;

  constructor(options: AppDeliveryOptions) {
    this.#o = options;
  }

  /** At `open`: entries still in the inbox, first those released before the stop, in order. */
  async restore(): Promise<void> {
    const byPeer = new Map<AddressString, StoreEntry[]>();
    for (const entry of await this.#o.store.list(INBOX_PREFIX)) {
      const peer = peerOfKey(INBOX_PREFIX, entry[0]);
      byPeer.set(peer, [...(byPeer.get(peer) ?? []), entry]);
    }
    for (const [peer, entries] of byPeer) {
      await this.#o.locks.run(peer, async () => {
        const conv = await this.#o.conversations.get(peer);
        const items = entries.map(([key, value]) => ({ key, entry: decodeInboxEntry(peer, value) }));
        items.sort((a, b) => a.entry.sequence - b.entry.sequence);
        for (const { key, entry } of items) {
          // Below recvNext: released before the restart, not finished by the app: first, in order.
          if (entry.sequence < conv.meta.recvNext) {
            conv.inbox.queue.push({ sequence: entry.sequence, item: entry, skippedBefore: 0, late: false });
          } else {
            this.push(conv, key, entry);
          }
        }
      });
    }
  }

  /** Adds a persisted inbox entry (stored under `key`) to the reorder buffer; queues what it releases. */
  push(conv: Conversation, key: string, entry: InboxEntry): void {
    conv.inbox.held.set(key, entry);
    this.#released(conv, conv.inbox.reorder.push(entry.sequence, entry));
  }

  /** A new session setup: held entries go to the app in order, then numbering starts at `recvNext`. */
  restart(conv: Conversation, recvNext: number): void {
    const q = conv.inbox;
    const held = [...q.held.values()].sort((a, b) => a.sequence - b.sequence);
    for (const item of held) q.queue.push({ sequence: item.sequence, item, skippedBefore: 0, late: false });
    q.held.clear();
    this.#o.scheduler.clearTimeout(q.timer);
    q.reorder = this.#o.conversations.newReorder(recvNext);
    conv.meta.recvNext = recvNext;
    void this.#deliver(conv);
  }

  /** The app added a listener: entries that waited for one may go now. */
  listenerAdded(event: string): void {
    if (!Object.hasOwn(EVENTS, event)) return;
    for (const conv of this.#o.conversations.all()) void this.#deliver(conv);
  }

  /** A conversation's cached state is dropped: its timer stops. */
  evict(conv: Conversation): void {
    this.#o.scheduler.clearTimeout(conv.inbox.timer);
  }

  /** Stops every timer. */
  close(): void {
    for (const conv of this.#o.conversations.all()) this.evict(conv);
  }

  #released(conv: Conversation, released: Released<InboxEntry>[]): void {
    const q = conv.inbox;
    for (const r of released) {
      q.held.delete(inboxKey(conv.peer, r.item.sequence, r.item.id));
      q.queue.push(r);
    }
    this.#o.scheduler.clearTimeout(q.timer);
    q.timer = undefined;
    const deadline = q.reorder.deadline;
    if (deadline !== undefined && !this.#o.isClosed()) {
      this.#o.onGap();
      q.timer = this.#o.scheduler.setTimeout(
        () => this.#released(conv, q.reorder.expire()),
        Math.max(0, deadline - this.#o.clock.now()) + 1,
      );
    }
    void this.#deliver(conv);
  }

  /**
   * The released entry to hand over next, if any. With a `message` listener: the queue's head,
   * whatever its kind (messages and receipts in order; an entry with no listener for its event is
   * simply consumed). Without one, what waits for messages stays in the inbox, but receipts do
   * not wait behind it: with a `delivered` listener the first receipt in the queue goes next.
   * With neither listener nothing goes (a receipt restored by `open` waits for the app's listeners).
   */
  #next(q: InboxQueue): Released<InboxEntry> | undefined {
    const { app } = this.#o;
    if (app.count('message') > 0) return q.queue[0];
    return q.queue.find((r) => {
      const rule = ruleOf(r.item);
      return !rule.waitsForMessages && app.count(rule.event) > 0;
    });
  }

  /** Hands released entries to the app (see `#next`); deletes each after its listeners returned. */
  async #deliver(conv: Conversation): Promise<void> {
    const q = conv.inbox;
    if (q.delivering) return;
    q.delivering = true;
    try {
      let r: Released<InboxEntry> | undefined;
      while (!this.#o.isClosed() && (r = this.#next(q)) !== undefined) {
        const e = r.item;
        const rule = ruleOf(e);
        for (const err of await rule.handOver(e, r, this.#o.app)) {
          this.#o.report(
            new ClientError(
              ClientErrorCode.HandlerFailed,
              'an event handler threw; the message counts as delivered',
              { cause: err, peer: e.peer, messageId: e.id },
            ),
          );
        }
        if (this.#o.isClosed()) return; // the one window: handed over, not yet deleted
        // Not under the conversation's lock: the entry goes as soon as the handlers returned,
        // however long the receive path holds the lock (that keeps the window above small).
        // Only this path and a session reset write recvseq/, each from the current memory.
        conv.meta.recvNext = q.reorder.next;
        await this.#o.store.write({
          put: [
            [recvSeqKey(conv.peer), encodeCounter(conv.meta.recvNext)],
            ...(rule.receipt ? [[receiptKey(conv.peer, e.id), new Uint8Array(0)] as const] : []),
          ],
          delete: [inboxKey(conv.peer, e.sequence, e.id)],
        });
        const at = q.queue.indexOf(r);
        if (at >= 0) q.queue.splice(at, 1);
        if (rule.receipt) this.#o.onHandedOver(conv.peer);
      }
    } catch (err) {
      this.#o.report(err);
    } finally {
      q.delivering = false;
    }
  }
}

const EVENTS: Readonly<Record<AppEvent, true>> = { message: true, delivered: true, unsupported: true };
