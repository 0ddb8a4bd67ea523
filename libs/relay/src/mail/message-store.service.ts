/**
 * The expiring ciphertext store (DESIGN.md, Protocol 5): the relay keeps each envelope until its
 * recipient acks it or it expires. A swappable part: `interface MessageStore` with the DI token of
 * the same name; `PostgresMessageStore` is the implementation the module provides.
 *
 * Guarantees of the PostgreSQL implementation:
 * - store is idempotent on (recipient, message id): a retried send never duplicates;
 * - one store call is one transaction; a recipient's quota holds under concurrent stores (a
 *   transaction-scoped advisory lock per recipient serialises stores to the same mailbox, taken
 *   in the `usm_store_mail` function the migrations install);
 * - fetch pages oldest first on a stable cursor (a bigint sequence, not a timestamp);
 * - ack deletes only the calling recipient's rows;
 * - expired mail is never returned, and is deleted by the cleanup job.
 */
import { Inject, Injectable } from '@nestjs/common';
import { MESSAGE_ID_BYTES, RELAY_OPTIONS } from '../relay.constants.js';
import { InjectRelayClock, RelayClock } from '../relay-clock.js';
import { RelayDatabase } from '../database/relay-database.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { RelayMetrics } from '../metrics/metrics.service.js';

/** One envelope to store, as the sender's request carries it. */
export interface OutgoingEnvelope {
  /** The recipient's address (string form). */
  recipient: string;
  /** 128-bit random message id chosen by the sender; the idempotency key with the recipient. */
  messageId: Uint8Array;
  /** The envelope bytes: ciphertext, opaque to the relay. */
  envelope: Uint8Array;
  /** Requested lifetime; capped at the relay's `mail.ttlMs` (also the default). */
  ttlMs?: number;
}

/** The outcome for one envelope of a store call, in request order. */
export type StoreResult =
  | {
      recipient: string;
      messageId: Uint8Array;
      status: 'stored';
      /** The stored message's position in its recipient's mailbox (as `fetch` reports it). */
      cursor: string;
      /** The relay's receive time (epoch ms), as `fetch` reports it in `createdAt`. */
      createdAt: number;
      expiresAt: number;
    }
  | { recipient: string; messageId: Uint8Array; status: 'duplicate' }
  | {
      recipient: string;
      messageId: Uint8Array;
      status: 'rejected';
      code: RelayErrorCode.QuotaExceeded;
      message: string;
    };

/** A message as its recipient fetches it. Times are epoch milliseconds. */
export interface StoredMessage {
  /** Position in the recipient's mailbox; pass the page's `cursor` to fetch the next page. */
  cursor: string;
  messageId: Uint8Array;
  sender: string;
  envelope: Uint8Array;
  createdAt: number;
  expiresAt: number;
}

export interface FetchPage {
  /** Oldest first. */
  messages: StoredMessage[];
  /** Cursor of the last message returned (or the one passed in when the page is empty). */
  cursor: string | null;
  /** More messages wait after this page. */
  hasMore: boolean;
}

/**
 * Stores, pages and deletes a recipient's undelivered ciphertext. Callers pass the authenticated
 * identity's address as `sender` / `recipient`: the store trusts it, the gateway guarantees it.
 */
export interface MessageStore {
  /** Stores envelopes from `sender`, idempotently; one result per envelope, in order. */
  store(sender: string, envelopes: readonly OutgoingEnvelope[]): Promise<StoreResult[]>;
  /** Up to `limit` unexpired messages of `recipient` after `afterCursor`, oldest first. */
  fetch(recipient: string, afterCursor?: string | null, limit?: number): Promise<FetchPage>;
  /** Deletes `recipient`'s messages with these ids; returns how many rows it deleted. */
  ack(recipient: string, messageIds: readonly Uint8Array[]): Promise<number>;
  /** Unexpired messages waiting for `recipient`. */
  pendingCount(recipient: string): Promise<number>;
  /**
   * The unexpired messages of these recipients still stored at these cursors (of `store`
   * results), in cursor order: what a node reads to push mail another node stored. Acked or
   * expired ones are simply absent.
   */
  read(recipients: readonly string[], cursors: readonly string[]): Promise<AddressedMessage[]>;
}

/** A stored message with its recipient, as `read` returns it. */
export interface AddressedMessage extends StoredMessage {
  recipient: string;
}

/** DI token of the MessageStore. */
export const MessageStore = Symbol('MessageStore');

/** Injects the relay's MessageStore. */
export const InjectMessageStore = (): ParameterDecorator => Inject(MessageStore);

/** A Buffer view of the bytes, as pg binds bytea parameters. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain Uint8Array copy of a bytea column (pg may return slices of a shared pool). */
export function fromBuffer(buf: Buffer): Uint8Array {
  return new Uint8Array(buf);
}

/**
 * The advisory-lock keys of these mailboxes, distinct and sorted: two 32-bit FNV-1a hashes (two
 * offset bases) of each address's UTF-8 bytes joined into one signed 64-bit integer, in decimal
 * (safe to put in a statement). Not a security hash: two mailboxes sharing a key only serialise
 * their stores.
 */
export function mailboxLockKeys(recipients: readonly string[]): string[] {
  const keys = new Set<bigint>();
  for (const recipient of new Set(recipients)) {
    let h1 = 0x811c9dc5;
    let h2 = 0x050c5d1f;
    for (const byte of Buffer.from(recipient, 'utf8')) {
      h1 = Math.imul(h1 ^ byte, 0x01000193);
      h2 = Math.imul(h2 ^ byte, 0x01000193);
    }
    keys.add(BigInt.asIntN(64, (BigInt(h1 >>> 0) << 32n) | BigInt(h2 >>> 0)));
  }
  return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
}

/**
 * The largest store cursor: PostgreSQL's bigint maximum (2^63 - 1), as `seq` is a bigint. A larger
 * number would fail in the database (SQLSTATE 22003), not be refused as input.
 */
export const MAX_STORE_CURSOR = '9223372036854775807';

const CURSOR_PATTERN = /^(0|[1-9][0-9]{0,18})$/;

/**
 * True when `cursor` is a store cursor: a decimal integer from 0 to MAX_STORE_CURSOR without
 * leading zeros. `fetch` and `read` check every cursor with it before any SQL runs.
 */
export function isStoreCursor(cursor: unknown): cursor is string {
  return (
    typeof cursor === 'string' && CURSOR_PATTERN.test(cursor) && BigInt(cursor) <= BigInt(MAX_STORE_CURSOR)
  );
}

function storedMessage(r: MailRow): StoredMessage {
  return {
    cursor: r.seq,
    messageId: fromBuffer(r.message_id),
    sender: r.sender,
    envelope: fromBuffer(r.envelope),
    createdAt: r.created_at.getTime(),
    expiresAt: r.expires_at.getTime(),
  };
}

/**
 * Group commits running at once, at most. Two groups never share a mailbox: a group commit locks
 * the mailbox of every recipient in it, so a second group with one of them would wait for the
 * first's COMMIT while holding a pool connection (with 4 overlapping groups at 1,000 msgs/s over
 * 10 mailboxes, commits took 33 ms instead of 4 ms). A call whose mailbox is busy waits for the
 * next group instead, and so does every later call to that mailbox (per-mailbox order holds),
 * while calls to idle mailboxes start at once.
 */
export const STORE_COMMITS_IN_FLIGHT = 4;

/**
 * Most envelopes in one group commit: bounds one transaction's locks and statement size, while a
 * commit's fixed cost (a round trip, the locks, the checks) is shared by hundreds of messages under load.
 */
export const STORE_GROUP_COMMIT_MAX = 1_000;

/** One store call waiting for its group commit. */
interface PendingStore {
  readonly sender: string;
  readonly envelopes: readonly OutgoingEnvelope[];
  resolve(results: StoreResult[]): void;
  reject(err: unknown): void;
}

/** One ack call waiting for its group delete. */
interface PendingAck {
  readonly recipient: string;
  readonly messageIds: readonly Uint8Array[];
  resolve(deleted: number): void;
  reject(err: unknown): void;
}

interface MailRow {
  seq: string;
  message_id: Buffer;
  sender: string;
  envelope: Buffer;
  created_at: Date;
  expires_at: Date;
}

/**
 * The PostgreSQL MessageStore.
 *
 * @example
 * const results = await store.store(alice, [{ recipient: bob, messageId, envelope }]);
 * const page = await store.fetch(bob, null, 50);
 * await store.ack(bob, page.messages.map((m) => m.messageId));
 */
@Injectable()
export class PostgresMessageStore implements MessageStore {
  private readonly mail: ResolvedRelayOptions['mail'];
  private waiting: PendingStore[] = [];
  /** Mailboxes in a group commit in flight. */
  private readonly busy = new Set<string>();
  private committing = 0;
  private readonly acking: PendingAck[] = [];
  private deleting = false;

  constructor(
    private readonly db: RelayDatabase,
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'mail'>,
    @InjectRelayClock() private readonly clock: RelayClock,
    private readonly metrics: RelayMetrics,
  ) {
    this.mail = options.mail;
  }

  /**
   * Group commit: a call is stored in the next transaction that starts, together with every other
   * call waiting then (STORE_COMMITS_IN_FLIGHT transactions at once on disjoint mailboxes,
   * STORE_GROUP_COMMIT_MAX envelopes each). An idle relay starts a transaction at once, so a lone
   * send waits for nothing; under load, one transaction carries many sends. Each call still gets its own results, and
   * only after the transaction holding its envelopes committed; a failed transaction fails every
   * call in it (nothing of it was stored).
   */
  async store(sender: string, envelopes: readonly OutgoingEnvelope[]): Promise<StoreResult[]> {
    this.checkAddress('sender', sender);
    if (!Array.isArray(envelopes) || envelopes.length > this.mail.maxEnvelopesPerSend) {
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.batchTooLarge(envelopes?.length ?? 0, this.mail.maxEnvelopesPerSend),
      );
    }
    envelopes.forEach((e, i) => this.checkEnvelope(e, i));
    if (envelopes.length === 0) return [];
    return new Promise<StoreResult[]>((resolve, reject) => {
      this.waiting.push({ sender, envelopes, resolve, reject });
      this.startCommits();
    });
  }

  /**
   * Starts group commits for the waiting calls while fewer than STORE_COMMITS_IN_FLIGHT run. A
   * group takes, in arrival order, every waiting call none of whose mailboxes is in a commit in
   * flight or held back in this pass (so no call overtakes an earlier one to the same mailbox).
   */
  private startCommits(): void {
    while (this.committing < STORE_COMMITS_IN_FLIGHT && this.waiting.length > 0) {
      const held = new Set(this.busy);
      const group: PendingStore[] = [];
      const later: PendingStore[] = [];
      let size = 0;
      for (const call of this.waiting) {
        const mailboxes = call.envelopes.map((e) => e.recipient);
        const fits = group.length === 0 || size + call.envelopes.length <= STORE_GROUP_COMMIT_MAX;
        if (fits && !mailboxes.some((m) => held.has(m))) {
          group.push(call);
          size += call.envelopes.length;
        } else {
          later.push(call);
          for (const m of mailboxes) held.add(m);
        }
      }
      if (group.length === 0) return;
      this.waiting = later;
      const mailboxes = new Set(group.flatMap((call) => call.envelopes.map((e) => e.recipient)));
      for (const m of mailboxes) this.busy.add(m);
      this.committing++;
      void this.commitGroup(group).finally(() => {
        for (const m of mailboxes) this.busy.delete(m);
        this.committing--;
        this.startCommits();
      });
    }
  }

  private async commitGroup(group: readonly PendingStore[]): Promise<void> {
    try {
      const rows = group.flatMap((call) =>
        call.envelopes.map((envelope) => ({ sender: call.sender, envelope })),
      );
      const results = await this.commit(rows);
      let offset = 0;
      for (const call of group) {
        call.resolve(results.slice(offset, offset + call.envelopes.length));
        offset += call.envelopes.length;
      }
    } catch (err) {
      for (const call of group) call.reject(err);
    }
  }

  /**
   * One transaction storing `batch` (envelopes of one or more senders), results in batch order:
   * one call of the `usm_store_mail` function (migrations/1795800000000-store-mail-function.ts),
   * which is its own transaction and one round trip. It locks the batch's mailboxes, then checks
   * duplicates, reads each mailbox's count (kept by triggers) and inserts what fits, in one query
   * that sees every store committed before the locks were granted: the quota holds across nodes. (It was three round
   * trips, BEGIN with the locks, the statement, COMMIT, and before that six; each is a wake-up of
   * the relay and of a PostgreSQL backend, and those wake-ups, not the work, set the latency.)
   */
  private async commit(
    batch: readonly { sender: string; envelope: OutgoingEnvelope }[],
  ): Promise<StoreResult[]> {
    const envelopes = batch.map((b) => b.envelope);
    const stop = this.metrics.time('store');
    try {
      const now = this.clock.now();
      const expiries = envelopes.map(
        (e) => new Date(now + Math.min(e.ttlMs ?? this.mail.ttlMs, this.mail.ttlMs)),
      );
      const key = (recipient: string, id: Uint8Array) => `${recipient}\u0000${asBuffer(id).toString('hex')}`;
      // The first occurrence of each (recipient, id) in the batch goes to the statement; a repeat
      // takes the first one's outcome ('duplicate' when it was stored, as a retry would).
      const first = new Map<string, number>();
      envelopes.forEach((e, i) => {
        const k = key(e.recipient, e.messageId);
        if (!first.has(k)) first.set(k, i);
      });
      const unique = [...first.values()];
      const { rows } = await this.db.query<{ idx: number; outcome: 'stored' | 'rejected'; seq: string }>(
        'SELECT idx, outcome, seq::text AS seq FROM usm_store_mail($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [
          mailboxLockKeys(envelopes.map((e) => e.recipient)),
          unique,
          unique.map((i) => envelopes[i]?.recipient),
          unique.map((i) => asBuffer((envelopes[i] as OutgoingEnvelope).messageId)),
          unique.map((i) => batch[i]?.sender),
          unique.map((i) => asBuffer((envelopes[i] as OutgoingEnvelope).envelope)),
          unique.map((i) => expiries[i]),
          new Date(now),
          this.mail.quotaPerRecipient,
        ],
      );
      const outcome = new Map(rows.map((r) => [r.idx, r]));
      const results = envelopes.map((e, i): StoreResult => {
        const base = { recipient: e.recipient, messageId: e.messageId };
        const firstIndex = first.get(key(e.recipient, e.messageId)) as number;
        const row = outcome.get(firstIndex);
        const status = row?.outcome;
        if (status === 'rejected') {
          return {
            ...base,
            status: 'rejected',
            code: RelayErrorCode.QuotaExceeded,
            message: M.quotaExceeded(this.mail.quotaPerRecipient),
          };
        }
        // Not inserted: already there, or inserted by a concurrent call meanwhile; or a repeat.
        if (status !== 'stored' || firstIndex !== i) return { ...base, status: 'duplicate' };
        return {
          ...base,
          status: 'stored',
          cursor: (row as { seq: string }).seq,
          createdAt: now,
          expiresAt: (expiries[i] as Date).getTime(),
        };
      });
      for (const status of ['stored', 'duplicate', 'rejected'] as const) {
        this.metrics.message(status, results.filter((r) => r.status === status).length);
      }
      return results;
    } finally {
      stop();
    }
  }

  async fetch(recipient: string, afterCursor?: string | null, limit?: number): Promise<FetchPage> {
    this.checkAddress('recipient', recipient);
    const after = afterCursor ?? '0';
    if (!isStoreCursor(after))
      throw new RelayError(RelayErrorCode.InvalidInput, M.badCursor(MAX_STORE_CURSOR));
    const max = this.mail.maxFetchPage;
    const n = limit ?? max;
    if (!Number.isSafeInteger(n) || n < 1 || n > max)
      throw new RelayError(RelayErrorCode.InvalidInput, M.badLimit(max));

    const stop = this.metrics.time('fetch');
    try {
      const { rows } = await this.db.query<MailRow>(
        `SELECT m.seq::text AS seq, m.message_id, m.sender, m.envelope, m.created_at, m.expires_at
           FROM usm_mail AS m
          WHERE m.recipient = $1 AND m.seq > $2 AND m.expires_at > $3
          ORDER BY m.seq
          LIMIT $4`,
        [recipient, after, new Date(this.clock.now()), n + 1],
      );
      const page = rows.slice(0, n);
      return {
        messages: page.map(storedMessage),
        cursor: page.length > 0 ? (page[page.length - 1] as MailRow).seq : (afterCursor ?? null),
        hasMore: rows.length > n,
      };
    } finally {
      stop();
    }
  }

  async ack(recipient: string, messageIds: readonly Uint8Array[]): Promise<number> {
    this.checkAddress('recipient', recipient);
    if (!Array.isArray(messageIds) || messageIds.length > this.mail.maxAcksPerCall) {
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.tooManyIds(messageIds?.length ?? 0, this.mail.maxAcksPerCall),
      );
    }
    messageIds.forEach((id, i) => this.checkMessageId(id, i));
    if (messageIds.length === 0) return 0;
    return new Promise<number>((resolve, reject) => {
      this.acking.push({ recipient, messageIds, resolve, reject });
      this.startAcks();
    });
  }

  /**
   * Group delete, as for stores: one DELETE at a time, carrying every ack waiting when it starts
   * (an ack is one statement anyway, but at 1,000 msgs/s one per message kept a PostgreSQL backend
   * waking a thousand times a second beside the group commits).
   */
  private startAcks(): void {
    if (this.deleting || this.acking.length === 0) return;
    const group = this.acking.splice(0, this.acking.length);
    this.deleting = true;
    void this.deleteGroup(group).finally(() => {
      this.deleting = false;
      this.startAcks();
    });
  }

  private async deleteGroup(group: readonly PendingAck[]): Promise<void> {
    const stop = this.metrics.time('ack');
    try {
      const recipients: string[] = [];
      const ids: Buffer[] = [];
      for (const call of group) {
        for (const id of call.messageIds) {
          recipients.push(call.recipient);
          ids.push(asBuffer(id));
        }
      }
      const { rows } = await this.db.query<{ recipient: string; message_id: Buffer }>(
        `DELETE FROM usm_mail AS m USING unnest($1::text[], $2::bytea[]) AS b(r, id)
          WHERE m.recipient = b.r AND m.message_id = b.id
          RETURNING m.recipient, m.message_id`,
        [recipients, ids],
      );
      // Each deleted row counts once, for the first call of its recipient that named it.
      const deleted = new Set(rows.map((r) => `${r.recipient}\u0000${r.message_id.toString('hex')}`));
      for (const call of group) {
        let n = 0;
        for (const id of call.messageIds) {
          if (deleted.delete(`${call.recipient}\u0000${asBuffer(id).toString('hex')}`)) n++;
        }
        call.resolve(n);
      }
      this.metrics.message('acked', rows.length);
    } catch (err) {
      for (const call of group) call.reject(err);
    } finally {
      stop();
    }
  }

  async read(recipients: readonly string[], cursors: readonly string[]): Promise<AddressedMessage[]> {
    if (!Array.isArray(recipients) || recipients.length > this.mail.maxNoticeCursors) {
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.readTooLarge(
          'recipients',
          Array.isArray(recipients) ? recipients.length : 0,
          this.mail.maxNoticeCursors,
        ),
      );
    }
    recipients.forEach((r) => this.checkAddress('recipient', r));
    if (!Array.isArray(cursors) || cursors.length > this.mail.maxNoticeCursors) {
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.readTooLarge('cursors', Array.isArray(cursors) ? cursors.length : 0, this.mail.maxNoticeCursors),
      );
    }
    if (!cursors.every(isStoreCursor)) {
      throw new RelayError(RelayErrorCode.InvalidInput, M.badCursor(MAX_STORE_CURSOR));
    }
    if (recipients.length === 0 || cursors.length === 0) return [];
    const stop = this.metrics.time('fetch');
    try {
      const { rows } = await this.db.query<MailRow & { recipient: string }>(
        `SELECT m.recipient, m.seq::text AS seq, m.message_id, m.sender, m.envelope, m.created_at, m.expires_at
           FROM usm_mail AS m
          WHERE m.recipient = ANY($1::text[]) AND m.seq = ANY($2::bigint[]) AND m.expires_at > $3
          ORDER BY m.seq`,
        [recipients, cursors, new Date(this.clock.now())],
      );
      return rows.map((r) => ({ recipient: r.recipient, ...storedMessage(r) }));
    } finally {
      stop();
    }
  }

  async pendingCount(recipient: string): Promise<number> {
    this.checkAddress('recipient', recipient);
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM usm_mail WHERE recipient = $1 AND expires_at > $2`,
      [recipient, new Date(this.clock.now())],
    );
    return Number(rows[0]?.n ?? 0);
  }

  private checkAddress(field: string, address: unknown): void {
    const max = this.mail.maxAddressLength;
    if (typeof address !== 'string' || address.length < 1 || address.length > max) {
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.badAddress(field, typeof address === 'string' ? address.length : 0, max),
      );
    }
  }

  private checkMessageId(id: unknown, index: number): void {
    if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) {
      const size = id instanceof Uint8Array ? id.length : 0;
      throw new RelayError(RelayErrorCode.InvalidInput, M.badMessageId(index, size, MESSAGE_ID_BYTES));
    }
  }

  private checkEnvelope(e: OutgoingEnvelope, index: number): void {
    if (typeof e !== 'object' || e === null) {
      throw new RelayError(RelayErrorCode.InvalidInput, M.badEnvelope(index));
    }
    this.checkAddress('recipient', e.recipient);
    this.checkMessageId(e.messageId, index);
    if (
      !(e.envelope instanceof Uint8Array) ||
      e.envelope.length < 1 ||
      e.envelope.length > this.mail.maxEnvelopeBytes
    ) {
      const size = e.envelope instanceof Uint8Array ? e.envelope.length : 0;
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.envelopeTooLarge(index, size, this.mail.maxEnvelopeBytes),
      );
    }
    if (e.ttlMs !== undefined && (!Number.isSafeInteger(e.ttlMs) || e.ttlMs < 1)) {
      throw new RelayError(RelayErrorCode.InvalidInput, M.badTtl(index));
    }
  }
}
