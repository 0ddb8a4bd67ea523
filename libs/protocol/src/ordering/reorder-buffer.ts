/**
 * Per-conversation ordering. The sender numbers its messages in a conversation 0, 1, 2, ...
 * (`SendSequence`); the number travels encrypted in the application payload. The receiver feeds
 * every decrypted message to a `ReorderBuffer`, which releases them to the application in
 * sequence order.
 *
 * Policy (all three bounds keep a hostile or broken sender from holding the receiver's memory):
 * - In order (sequence === next): released at once, with any buffered run that follows it.
 * - Ahead (sequence > next): held until the gap fills, or until it is given up, whichever first:
 *   - timeout: when the OLDEST held message has waited `timeoutMs` (checked on every `push` and
 *     on `expire()`, which the client calls from a timer), the gap is skipped and the buffer
 *     released up to its next gap;
 *   - bound: when more than `maxBuffered` messages are held, the same happens at once.
 *   A skipped gap is reported (`skippedBefore`) so the UI can show "messages missing".
 * - Behind (sequence < next): a message that arrives after its gap was given up, released at once
 *   with `late: true` (the UI places it by `sentAt`). Losing it would be worse than showing it
 *   out of place. Duplicates are not this buffer's job: the client drops them first by message id
 *   (seen-ids.ts); a second message with a held sequence number is dropped here.
 *
 * The buffer is in memory only. The client persists each decrypted message before it acks it
 * (docs/client.md, "Exactly once, in order") and persists `next` with the conversation; after a restart it rebuilds
 * the buffer from stored, not yet released messages. Time comes from an injected clock.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { DEFAULT_REORDER_TIMEOUT_MS, MAX_REORDER_BUFFER, MAX_SEQUENCE } from '../limits.js';

/** The sender's per-conversation counter. Persist `next` before the message leaves. */
export class SendSequence {
  #next: number;

  constructor(next = 0) {
    checkSequence(next, 'SendSequence start');
    this.#next = next;
  }

  /** The number the next message will carry. */
  get next(): number {
    return this.#next;
  }

  /** Takes the next number; throws TOO_LARGE once MAX_SEQUENCE was used (reset the session). */
  take(): number {
    if (this.#next > MAX_SEQUENCE) {
      throw new ProtocolError(ProtocolErrorCode.TooLarge, 'sequence: exhausted, reset the session');
    }
    return this.#next++;
  }
}

export interface ReorderOptions {
  /** The first sequence number expected. @default 0 */
  readonly next?: number;
  /** Messages held at most. @default MAX_REORDER_BUFFER (256) */
  readonly maxBuffered?: number;
  /** How long the oldest held message waits for its gap. @default DEFAULT_REORDER_TIMEOUT_MS (10 s) */
  readonly timeoutMs?: number;
  /** Milliseconds now. @default Date.now */
  readonly now?: () => number;
}

export interface Released<T> {
  readonly sequence: number;
  readonly item: T;
  /** Sequence numbers given up just before this one (0 when none). */
  readonly skippedBefore: number;
  /** True when the message arrived after its gap had been given up. */
  readonly late: boolean;
}

interface Held<T> {
  readonly item: T;
  readonly heldAt: number;
}

export class ReorderBuffer<T> {
  #next: number;
  readonly #held = new Map<number, Held<T>>();
  readonly #maxBuffered: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  constructor(options: ReorderOptions = {}) {
    this.#next = options.next ?? 0;
    checkSequence(this.#next, 'ReorderBuffer next');
    this.#maxBuffered = options.maxBuffered ?? MAX_REORDER_BUFFER;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REORDER_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#maxBuffered) || this.#maxBuffered < 1) {
      throw new RangeError('ReorderBuffer: maxBuffered must be a positive integer');
    }
    if (!(this.#timeoutMs >= 0)) throw new RangeError('ReorderBuffer: timeoutMs must be >= 0');
  }

  /** The sequence number the application is waiting for (persist it with the conversation). */
  get next(): number {
    return this.#next;
  }

  /** Messages held, waiting for a gap to fill. */
  get size(): number {
    return this.#held.size;
  }

  /** Adds a decrypted message; returns what can be released now, in order. */
  push(sequence: number, item: T): Released<T>[] {
    checkSequence(sequence, 'sequence', MAX_SEQUENCE);
    const out: Released<T>[] = [];
    if (sequence < this.#next) {
      out.push({ sequence, item, skippedBefore: 0, late: true });
    } else if (sequence === this.#next) {
      out.push({ sequence, item, skippedBefore: 0, late: false });
      this.#next = sequence + 1;
      this.#releaseRun(out, 0);
    } else if (!this.#held.has(sequence)) {
      this.#held.set(sequence, { item, heldAt: this.#now() });
    }
    this.#giveUpGaps(out);
    return out;
  }

  /** Releases what waited past the timeout. Call it from a timer while `size > 0`. */
  expire(): Released<T>[] {
    const out: Released<T>[] = [];
    this.#giveUpGaps(out);
    return out;
  }

  /** When the oldest held message times out (ms, from the clock), or undefined when none is held. */
  get deadline(): number | undefined {
    let oldest: number | undefined;
    for (const h of this.#held.values()) if (oldest === undefined || h.heldAt < oldest) oldest = h.heldAt;
    return oldest === undefined ? undefined : oldest + this.#timeoutMs;
  }

  #giveUpGaps(out: Released<T>[]): void {
    for (;;) {
      const deadline = this.deadline;
      const overflow = this.#held.size > this.#maxBuffered;
      if (deadline === undefined || (!overflow && this.#now() < deadline)) return;
      let lowest = Infinity;
      for (const s of this.#held.keys()) if (s < lowest) lowest = s;
      const skipped = lowest - this.#next;
      this.#next = lowest;
      this.#releaseRun(out, skipped);
    }
  }

  /** Releases held messages from `next` on while they are consecutive. */
  #releaseRun(out: Released<T>[], skippedBefore: number): void {
    let skipped = skippedBefore;
    for (let held = this.#held.get(this.#next); held; held = this.#held.get(this.#next)) {
      this.#held.delete(this.#next);
      out.push({ sequence: this.#next, item: held.item, skippedBefore: skipped, late: false });
      skipped = 0;
      this.#next += 1;
    }
  }
}

/** A sequence number; a counter's `next` may be one past MAX_SEQUENCE (exhausted). */
function checkSequence(n: number, what: string, max = MAX_SEQUENCE + 1): void {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: expected an integer from 0 to ${max}`);
  }
}
