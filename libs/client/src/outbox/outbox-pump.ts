/**
 * Moves the outbox to the relay: while connected, what the outbox has due goes out in `send`
 * requests within one event's limits (count and bytes); each envelope's result settles it:
 * `stored` or `duplicate` (the relay dedups by id) removes it and resolves its `send`, a refusal
 * no retry can fix removes it and rejects (RELAY_ERROR), anything else stays for a retry on the
 * outbox's backoff schedule. Entries past their expiry are removed and reported (EXPIRED). One
 * flush runs at a time (a call meanwhile makes it go round once more); afterwards a timer wakes
 * it when the next entry is due or expires (while offline, at most every OFFLINE_EXPIRY_CHECK_MS,
 * for expiry only).
 */
import {
  MAX_ENVELOPES_PER_SEND,
  MAX_SEND_BATCH_BYTES,
  type MessageIdString,
  ProtocolError,
  ProtocolErrorCode,
  formatMessageId,
  chunk,
} from '@usm/protocol';
import { MAX_BINARY_ATTACHMENTS, type RelayRequests } from '../connection.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { Runtime, TimerHandle } from '../runtime.js';
import type { Outbox } from './outbox.js';

/** While offline, how often the outbox is checked for expired entries. */
export const OFFLINE_EXPIRY_CHECK_MS = 30_000;

/** A relay refusal of one envelope that a retry cannot fix. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set([
  ProtocolErrorCode.Malformed,
  ProtocolErrorCode.TooLarge,
  ProtocolErrorCode.UnsupportedVersion,
]);

export interface OutboxPumpOptions extends Runtime {
  readonly outbox: Outbox;
  readonly connection: RelayRequests;
  /**
   * A message's outcome: stored (no `error`), or given up (`error`). Returns true when a `send`
   * call waits for it (send-pipeline.ts), which then carries the error instead of `error` events.
   */
  readonly settle: (id: MessageIdString, error?: ClientError) => boolean;
}

export class OutboxPump {
  readonly #o: OutboxPumpOptions;
  #flushing = false;
  #again = false;
  #timer: TimerHandle;

  constructor(options: OutboxPumpOptions) {
    this.#o = options;
  }

  /** After a (re)connect: every entry is due now (backoff delays were about a connection now gone). */
  async resume(): Promise<void> {
    await this.#o.outbox.rescheduleAll();
    await this.flush();
  }

  /** Sends what the outbox has due, while connected; one run at a time. */
  async flush(): Promise<void> {
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#again = false;
        await this.#expire();
        if (!this.#o.connection.connected || this.#o.isClosed()) break;
        const due = await this.#o.outbox.due();
        const batches = chunk(due, {
          maxCount: Math.min(MAX_ENVELOPES_PER_SEND, MAX_BINARY_ATTACHMENTS),
          maxBytes: MAX_SEND_BATCH_BYTES,
          bytesOf: (e) => e.envelope.length,
        });
        for (const batch of batches) if (!(await this.#send(batch))) break;
      } while (this.#again);
    } catch (err) {
      this.#o.report(err);
    } finally {
      this.#flushing = false;
      this.#schedule();
    }
  }

  /** Stops the timer. */
  close(): void {
    this.#o.scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #expire(): Promise<void> {
    for (const gone of await this.#o.outbox.expire()) {
      const id = formatMessageId(gone.messageId);
      const err = new ClientError(ClientErrorCode.Expired, 'a message expired before the relay stored it', {
        peer: gone.recipient,
        messageId: id,
      });
      this.#o.settle(id, err);
      this.#o.report(err);
    }
  }

  /** One `send` request; false when it failed as a whole (the rest waits for a retry). */
  async #send(batch: Awaited<ReturnType<Outbox['due']>>): Promise<boolean> {
    const { outbox, connection } = this.#o;
    await outbox.markAttempt(batch.map((e) => e.messageId));
    let results;
    try {
      ({ results } = await connection.request('send', { envelopes: batch.map((e) => e.envelope) }));
    } catch (err) {
      // Retried by the outbox: a dropped socket, or a node shutting down / database down.
      const transient =
        ClientError.is(err, ClientErrorCode.NotConnected) ||
        ProtocolError.is((err as { cause?: unknown }).cause, ProtocolErrorCode.Unavailable);
      if (!transient) this.#o.report(err);
      return false;
    }
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      const outcome = results[i];
      const id = formatMessageId(entry.messageId);
      if (outcome?.status === 'stored' || outcome?.status === 'duplicate') {
        await outbox.remove(entry.messageId);
        this.#o.settle(id);
      } else if (outcome?.status === 'rejected' && PERMANENT_REFUSALS.has(outcome.code)) {
        await outbox.remove(entry.messageId);
        const err = new ClientError(
          ClientErrorCode.RelayError,
          `the relay refused a message (${outcome.code}): ${outcome.message}`,
          { cause: new ProtocolError(outcome.code, outcome.message), peer: entry.recipient, messageId: id },
        );
        if (!this.#o.settle(id, err)) this.#o.report(err);
      }
      // Anything else (quota, rate limit, unavailable, no reply) stays queued for a retry.
    }
    return true;
  }

  #schedule(): void {
    this.close();
    if (this.#o.isClosed()) return;
    const at = this.#o.outbox.nextWakeAt();
    if (at === undefined) return;
    const wait = at - this.#o.clock.now();
    const delay = this.#o.connection.connected ? Math.max(0, wait) : Math.max(OFFLINE_EXPIRY_CHECK_MS, wait);
    this.#timer = this.#o.scheduler.setTimeout(() => void this.flush(), delay);
  }
}
