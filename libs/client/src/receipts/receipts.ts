/**
 * Delivery receipts to the senders of messages the app was handed. AppDelivery marks each handed
 * over message with a `receipt/<peer>/<id>` key in the same batch that deletes it from the inbox;
 * a short while later (so one receipt carries many ids) the marks of that peer become encrypted
 * DeliveryReceipt messages of up to MAX_RECEIPT_IDS ids each, queued in the outbox in the same
 * batch that deletes the marks. A peer with no session (it was lost) keeps its marks until there
 * is one. Marks left by a previous run are picked up at `open`.
 */
import {
  type AddressString,
  type ApplicationPayload,
  MAX_RECEIPT_IDS,
  type MessageIdString,
  PayloadKind,
  parseMessageId,
  chunk,
} from '@usm/protocol';
import { RECEIPT_PREFIX, peerOfKey, receiptPrefix } from '../client-records.js';
import type { Conversation, ConversationStore } from '../conversations/conversation-store.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { KeyedLock } from '../locks.js';
import type { Runtime, TimerHandle } from '../runtime.js';
import type { ClientStore, WriteBatch } from '../storage/client-store.js';

/** How long delivered ids gather before one receipt carries them all. */
export const RECEIPT_DELAY_MS = 50;

export interface ReceiptsOptions extends Runtime {
  readonly store: ClientStore;
  readonly conversations: ConversationStore;
  readonly locks: KeyedLock;
  /** Encrypts the payload `build` makes for `conv` and queues it with `extra` (send-pipeline.ts). */
  readonly enqueue: (
    conv: Conversation,
    build: (sequence: number, sentAt: number) => ApplicationPayload,
    extra: WriteBatch,
  ) => Promise<MessageIdString>;
}

export class Receipts {
  readonly #o: ReceiptsOptions;
  readonly #timers = new Map<AddressString, TimerHandle>();

  constructor(options: ReceiptsOptions) {
    this.#o = options;
  }

  /** At `open`: receipts marked by a previous run and not queued yet. */
  async restore(): Promise<void> {
    for (const [key] of await this.#o.store.list(RECEIPT_PREFIX)) {
      this.schedule(peerOfKey(RECEIPT_PREFIX, key));
    }
  }

  /** Queues `peer`'s marked receipts after RECEIPT_DELAY_MS (once, however often it is called meanwhile). */
  schedule(peer: AddressString): void {
    if (this.#timers.has(peer) || this.#o.isClosed()) return;
    const timer = this.#o.scheduler.setTimeout(() => {
      this.#timers.delete(peer);
      if (this.#o.isClosed()) return;
      this.#o.locks
        .run(peer, () => this.#queue(peer))
        .catch((err: unknown) => {
          // A full outbox: the marks stay and go with the next receipt of this peer.
          if (!ClientError.is(err, ClientErrorCode.QueueFull)) this.#o.report(err);
        });
    }, RECEIPT_DELAY_MS);
    this.#timers.set(peer, timer);
  }

  /** Stops every timer (the marks stay stored for the next `open`). */
  close(): void {
    for (const timer of this.#timers.values()) this.#o.scheduler.clearTimeout(timer);
    this.#timers.clear();
  }

  /** Encrypts one receipt per (up to) MAX_RECEIPT_IDS marked ids and queues it; under the peer's lock. */
  async #queue(peer: AddressString): Promise<void> {
    const keys = (await this.#o.store.list(receiptPrefix(peer))).map(([key]) => key);
    if (keys.length === 0) return;
    const conv = await this.#o.conversations.get(peer);
    if (!conv.session) return; // no session (lost): the receipts wait for a new one
    for (const marks of chunk(keys, { maxCount: MAX_RECEIPT_IDS })) {
      const messageIds = marks.map((k) => parseMessageId(k.slice(receiptPrefix(peer).length)));
      await this.#o.enqueue(
        conv,
        (sequence, sentAt) => ({ kind: PayloadKind.DeliveryReceipt, sequence, sentAt, messageIds }),
        { delete: marks },
      );
    }
  }
}
