/**
 * The persistent outbox: messages already encrypted, waiting for the relay to confirm it has
 * stored them durably. It lives in a ClientStore, so it survives restarts in order.
 *
 * The life of an entry:
 *  1. `enqueue` before the first try. The caller encrypted the envelope with its ratchet and
 *     passes the advanced ratchet state as `extra` operations: the state and the entry are
 *     written in ONE atomic batch, so a crash can neither send a message whose ratchet step is
 *     lost (a rolled-back ratchet would reuse a message key) nor advance the ratchet for a
 *     message that is not queued. The queue is bounded: at `maxEntries` it throws QUEUE_FULL
 *     and writes nothing (check `remaining` before encrypting to avoid spending a ratchet step).
 *  2. `due(now)` hands out what to send, oldest first. Per recipient, order is kept by
 *     head-of-line blocking: an entry is due only when every older, unexpired entry to the same
 *     recipient is due too, so a recipient's messages always leave in the order they were queued.
 *  3. `markAttempt(ids, now)` when handing entries to the transport: counts the attempt and
 *     schedules the next one with capped exponential backoff and full jitter. Entries marked
 *     together share one random draw, so a batch sent together is retried together.
 *  4. `remove(id)` when the relay acks that it stored the message (the relay is idempotent by
 *     message id, so a retry after a lost ack does no harm).
 *  5. `expire(now)` removes entries past `expiresAt` and returns them, so the client can report
 *     EXPIRED for each: nothing is ever dropped silently.
 *
 * Time comes from an injected clock (or a `now` argument); nothing here sleeps or sets timers.
 */
import { type Clock, MESSAGE_ID_BYTES, systemClock } from '@usm/protocol';
import { BACKOFF_DEFAULTS, backoffCeiling, type BackoffOptions } from '../backoff.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { SerialQueue } from '../locks.js';
import {
  MAX_VALUE_BYTES,
  type ClientStore,
  type StoreEntry,
  type WriteBatch,
} from '../storage/client-store.js';
import { bodyKey, decodeMeta, encodeMeta, metaKey, seqOfMetaKey, type OutboxMeta } from './outbox-record.js';

/** A queued message. */
export interface OutboxEntry {
  /** The envelope's 128-bit random message id. */
  readonly messageId: Uint8Array;
  /** The recipient's address, as the envelope names it. */
  readonly recipient: string;
  /** The encoded, already encrypted envelope, sent as is. */
  readonly envelope: Uint8Array;
  /** How many times it was handed to the transport. */
  readonly attempts: number;
  /** Not due before this time (ms since epoch). */
  readonly nextAttemptAt: number;
  /** Given up on (EXPIRED) at this time (ms since epoch). */
  readonly expiresAt: number;
  /** When it was queued (ms since epoch). */
  readonly enqueuedAt: number;
}

/** What `enqueue` takes. */
export interface NewOutboxEntry {
  messageId: Uint8Array;
  recipient: string;
  envelope: Uint8Array;
  /** When to give up (ms since epoch). @default now + ttlMs */
  expiresAt?: number;
}

export interface OutboxOptions {
  /** Prefix of the outbox's keys in the store; no other writer may use it. @default 'outbox/' */
  prefix?: string;
  /** Most entries queued at once; QUEUE_FULL beyond. @default 1000 */
  maxEntries?: number;
  /** Lifetime of an entry enqueued without `expiresAt`, in ms. @default 2592000000 (30 days, the relay's TTL) */
  ttlMs?: number;
  /** The retry schedule after each attempt. @default BACKOFF_DEFAULTS (500 ms base, x2, 30 s cap) */
  retry?: BackoffOptions;
  /** @default systemClock */
  clock?: Clock;
}

export const OUTBOX_DEFAULTS = Object.freeze({
  prefix: 'outbox/',
  maxEntries: 1000,
  ttlMs: 30 * 24 * 60 * 60 * 1000,
});

/** Longest recipient address accepted, in UTF-16 code units. */
export const MAX_RECIPIENT_LENGTH = 1024;

const invalid = (message: string) => new ClientError(ClientErrorCode.InvalidArgument, `outbox: ${message}`);

function idHex(id: Uint8Array): string {
  let out = '';
  for (const b of id) out += b.toString(16).padStart(2, '0');
  return out;
}

function checkId(id: unknown, what = 'messageId'): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) {
    throw invalid(`${what} must be a Uint8Array of ${MESSAGE_ID_BYTES} bytes`);
  }
  return id;
}

function checkTime(t: unknown, what: string): number {
  if (typeof t !== 'number' || !Number.isFinite(t)) throw invalid(`${what} must be a finite number of ms`);
  return t;
}

/**
 * @example
 * const outbox = await Outbox.open(store);
 * if (outbox.remaining === 0) throw new ClientError(ClientErrorCode.QueueFull, '...');
 * const envelope = await encryptFor(bob); // advances the ratchet in memory
 * await outbox.enqueue({ messageId, recipient: bob, envelope }, { put: [['ratchet/bob', state]] });
 * const batch = await outbox.due();
 * await outbox.markAttempt(batch.map((e) => e.messageId));
 * for (const e of batch) socket.emit('send', e.envelope, () => outbox.remove(e.messageId));
 */
export class Outbox {
  readonly #store: ClientStore;
  readonly #prefix: string;
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #retry: Required<BackoffOptions>;
  readonly #clock: Clock;
  /** Entries by message id (hex), in queue order (ascending seq): insertion order of a Map. */
  readonly #entries = new Map<string, OutboxMeta>();
  #nextSeq = 0;
  readonly #queue = new SerialQueue();

  private constructor(store: ClientStore, options: OutboxOptions) {
    this.#store = store;
    this.#prefix = options.prefix ?? OUTBOX_DEFAULTS.prefix;
    this.#maxEntries = options.maxEntries ?? OUTBOX_DEFAULTS.maxEntries;
    this.#ttlMs = options.ttlMs ?? OUTBOX_DEFAULTS.ttlMs;
    this.#retry = { ...BACKOFF_DEFAULTS, ...options.retry };
    this.#clock = options.clock ?? systemClock;
    if (typeof this.#prefix !== 'string' || this.#prefix.length === 0)
      throw invalid('prefix must not be empty');
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw invalid(`maxEntries must be a whole number >= 1, got ${this.#maxEntries}`);
    }
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs <= 0)
      throw invalid(`ttlMs must be > 0, got ${this.#ttlMs}`);
    backoffCeiling(0, this.#retry); // validates the retry options now rather than at the first attempt
  }

  /** Loads the queue from the store, in the order it was enqueued. */
  static async open(store: ClientStore, options: OutboxOptions = {}): Promise<Outbox> {
    const outbox = new Outbox(store, options);
    for (const [key, value] of await store.list(`${outbox.#prefix}m/`)) {
      const meta = decodeMeta(seqOfMetaKey(outbox.#prefix, key), value);
      outbox.#entries.set(idHex(meta.messageId), meta);
      outbox.#nextSeq = meta.seq + 1;
    }
    return outbox;
  }

  /** How many entries are queued. */
  get size(): number {
    return this.#entries.size;
  }

  /** How many more entries fit before QUEUE_FULL. */
  get remaining(): number {
    return this.#maxEntries - this.#entries.size;
  }

  /** True when an entry with this message id is queued. */
  has(messageId: Uint8Array): boolean {
    return this.#entries.has(idHex(checkId(messageId)));
  }

  /**
   * The earliest time anything changes on its own (an entry becomes due or expires), for the
   * caller's timer; undefined when the queue is empty.
   */
  nextWakeAt(): number | undefined {
    let at: number | undefined;
    for (const m of this.#entries.values()) at = Math.min(at ?? Infinity, m.nextAttemptAt, m.expiresAt);
    return at;
  }

  /**
   * Queues an encrypted envelope, together with the caller's `extra` operations (its advanced
   * ratchet state), in one atomic write. Throws QUEUE_FULL at the limit, EXPIRED when
   * `expiresAt` has passed, INVALID_ARGUMENT for a bad entry or a message id already queued;
   * in every case nothing is written.
   */
  enqueue(entry: NewOutboxEntry, extra: WriteBatch = {}): Promise<OutboxEntry> {
    return this.#exclusive(async () => {
      const messageId = checkId(entry?.messageId).slice();
      const { recipient, envelope } = entry;
      if (
        typeof recipient !== 'string' ||
        recipient.length === 0 ||
        recipient.length > MAX_RECIPIENT_LENGTH
      ) {
        throw invalid(`recipient must be a string of 1 to ${MAX_RECIPIENT_LENGTH} characters`);
      }
      if (!(envelope instanceof Uint8Array) || envelope.length === 0 || envelope.length > MAX_VALUE_BYTES) {
        throw invalid(`envelope must be a Uint8Array of 1 to ${MAX_VALUE_BYTES} bytes`);
      }
      const now = checkTime(this.#clock.now(), 'clock.now()');
      const expiresAt = checkTime(entry.expiresAt ?? now + this.#ttlMs, 'expiresAt');
      if (expiresAt <= now) {
        throw new ClientError(
          ClientErrorCode.Expired,
          'outbox: the message expires before it could be sent; give it a later expiresAt',
        );
      }
      const hex = idHex(messageId);
      if (this.#entries.has(hex)) throw invalid('a message with this messageId is already queued');
      if (this.#entries.size >= this.#maxEntries) {
        throw new ClientError(
          ClientErrorCode.QueueFull,
          `outbox: ${this.#entries.size} messages are waiting, the limit (maxEntries): ` +
            'wait until some are delivered or expire, or raise maxEntries',
        );
      }
      const meta: OutboxMeta = {
        seq: this.#nextSeq,
        messageId,
        recipient,
        attempts: 0,
        nextAttemptAt: now,
        expiresAt,
        enqueuedAt: now,
      };
      await this.#write(extra, [
        [metaKey(this.#prefix, meta.seq), encodeMeta(meta)],
        [bodyKey(this.#prefix, meta.seq), envelope],
      ]);
      this.#nextSeq++;
      this.#entries.set(hex, meta);
      return { ...publicMeta(meta), envelope: envelope.slice() };
    });
  }

  /**
   * The entries to send now, oldest first: unexpired, `nextAttemptAt <= now`, and not behind an
   * older entry to the same recipient that is still waiting (head-of-line blocking).
   */
  async due(now: number = this.#clock.now()): Promise<OutboxEntry[]> {
    checkTime(now, 'now');
    const blocked = new Set<string>();
    const picked: OutboxMeta[] = [];
    for (const m of this.#entries.values()) {
      if (m.expiresAt <= now || blocked.has(m.recipient)) continue;
      if (m.nextAttemptAt > now) blocked.add(m.recipient);
      else picked.push(m);
    }
    return this.#withEnvelopes(picked);
  }

  /**
   * Counts one attempt for each entry and schedules its next one: now + a backoff delay drawn
   * once for the whole call (full jitter over each entry's own ceiling). Ids no longer queued
   * (acked meanwhile) are skipped. Returns the updated entries' metadata, without envelopes.
   */
  markAttempt(
    messageIds: Uint8Array | readonly Uint8Array[],
    now: number = this.#clock.now(),
  ): Promise<Omit<OutboxEntry, 'envelope'>[]> {
    return this.#exclusive(async () => {
      checkTime(now, 'now');
      const ids = messageIds instanceof Uint8Array ? [messageIds] : [...messageIds];
      const r = this.#retry.random();
      if (!(r >= 0 && r < 1)) throw invalid(`retry.random() must return a number in [0, 1), got ${r}`);
      const updated: OutboxMeta[] = [];
      const seen = new Set<string>();
      for (const id of ids) {
        const hex = idHex(checkId(id));
        const m = this.#entries.get(hex);
        if (!m || seen.has(hex)) continue;
        seen.add(hex);
        const delay = Math.floor(r * backoffCeiling(Math.min(m.attempts, 1000), this.#retry));
        updated.push({ ...m, attempts: Math.min(m.attempts + 1, 0xffffffff), nextAttemptAt: now + delay });
      }
      if (updated.length === 0) return [];
      await this.#write(
        {},
        updated.map((m) => [metaKey(this.#prefix, m.seq), encodeMeta(m)] as const),
      );
      for (const m of updated) this.#entries.set(idHex(m.messageId), m);
      return updated.map(publicMeta);
    });
  }

  /**
   * Makes every entry due at `now` (e.g. right after a reconnect, so the queue is flushed
   * without waiting out backoff delays that were about a connection now gone).
   */
  rescheduleAll(now: number = this.#clock.now()): Promise<void> {
    return this.#exclusive(async () => {
      checkTime(now, 'now');
      const updated = [...this.#entries.values()]
        .filter((m) => m.nextAttemptAt > now)
        .map((m) => ({
          ...m,
          nextAttemptAt: now,
        }));
      if (updated.length === 0) return;
      await this.#write(
        {},
        updated.map((m) => [metaKey(this.#prefix, m.seq), encodeMeta(m)] as const),
      );
      for (const m of updated) this.#entries.set(idHex(m.messageId), m);
    });
  }

  /**
   * Removes an entry (the relay acked it), with the caller's `extra` operations in the same
   * atomic write. Returns false when no such entry is queued (a second ack); `extra` is
   * written either way.
   */
  remove(messageId: Uint8Array, extra: WriteBatch = {}): Promise<boolean> {
    return this.#exclusive(async () => {
      const hex = idHex(checkId(messageId));
      const m = this.#entries.get(hex);
      await this.#write(extra, [], m ? [metaKey(this.#prefix, m.seq), bodyKey(this.#prefix, m.seq)] : []);
      if (!m) return false;
      this.#entries.delete(hex);
      return true;
    });
  }

  /** Removes every entry with `expiresAt <= now` in one write and returns them, oldest first. */
  expire(now: number = this.#clock.now()): Promise<OutboxEntry[]> {
    return this.#exclusive(async () => {
      checkTime(now, 'now');
      const gone = [...this.#entries.values()].filter((m) => m.expiresAt <= now);
      if (gone.length === 0) return [];
      const entries = await this.#withEnvelopes(gone);
      await this.#write(
        {},
        [],
        gone.flatMap((m) => [metaKey(this.#prefix, m.seq), bodyKey(this.#prefix, m.seq)]),
      );
      for (const m of gone) this.#entries.delete(idHex(m.messageId));
      return entries;
    });
  }

  /** Mutations run one at a time, so memory follows the store in the same order. */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(task);
  }

  async #write(extra: WriteBatch, put: StoreEntry[], del: string[] = []): Promise<void> {
    if (typeof extra !== 'object' || extra === null) throw invalid('extra must be a batch object');
    const extraPut = extra.put ?? [];
    const extraDelete = extra.delete ?? [];
    const ours = (key: unknown) => typeof key === 'string' && key.startsWith(this.#prefix);
    if (extraPut.some(([key]) => ours(key)) || extraDelete.some(ours)) {
      throw invalid(`extra operations must not touch the outbox's own keys (prefix '${this.#prefix}')`);
    }
    await this.#store.write({ put: [...extraPut, ...put], delete: [...extraDelete, ...del] });
  }

  async #withEnvelopes(metas: OutboxMeta[]): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = [];
    for (const m of metas) {
      const envelope = await this.#store.get(bodyKey(this.#prefix, m.seq));
      // `due` runs beside mutations: an entry acked (removed) while loading is not handed out.
      const current = this.#entries.get(idHex(m.messageId));
      if (!current) continue;
      if (envelope === undefined) {
        throw new ClientError(
          ClientErrorCode.CorruptStore,
          'outbox: a queued entry has lost its envelope; the store was changed by other code',
        );
      }
      out.push({ ...publicMeta(current), envelope });
    }
    return out;
  }
}

function publicMeta(m: OutboxMeta): Omit<OutboxEntry, 'envelope'> {
  return {
    messageId: m.messageId.slice(),
    recipient: m.recipient,
    attempts: m.attempts,
    nextAttemptAt: m.nextAttemptAt,
    expiresAt: m.expiresAt,
    enqueuedAt: m.enqueuedAt,
  };
}
