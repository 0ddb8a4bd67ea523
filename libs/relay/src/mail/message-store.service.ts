/**
 * The PostgreSQL MessageStore (message-store.interface.ts), the one the module provides.
 *
 * Its guarantees:
 * - store is idempotent on (recipient, message id): a retried send never duplicates;
 * - one store call is one transaction; a recipient's quota holds under concurrent stores (a
 *   transaction-scoped advisory lock per recipient serialises stores to the same mailbox, taken
 *   in the `usm_store_mail` function the migrations install);
 * - fetch pages oldest first on a stable cursor (a bigint sequence, not a timestamp);
 * - ack deletes only the calling recipient's rows;
 * - expired mail is never returned, and is deleted by the cleanup job.
 */
import { Inject, Injectable } from '@nestjs/common';
import { asBuffer, fromBuffer } from '../database/bytea.js';
import { GroupCommit } from '../database/group-commit.js';
import { RelayDatabase } from '../database/relay-database.js';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { InjectRelayClock, RelayClock } from '../relay-clock.js';
import { MESSAGE_ID_BYTES, RELAY_OPTIONS } from '../relay.constants.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import type {
  AddressedMessage,
  FetchPage,
  MessageStore,
  OutgoingEnvelope,
  StoreResult,
  StoredMessage,
} from './message-store.interface.js';
import { mailboxLockKeys } from './mailbox-lock-keys.js';
import { MAX_STORE_CURSOR, isStoreCursor } from './store-cursor.js';

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

/** One store call, as its group commit carries it. */
interface StoreCall {
  readonly sender: string;
  readonly envelopes: readonly OutgoingEnvelope[];
}

/** One ack call, as its group delete carries it. */
interface AckCall {
  readonly recipient: string;
  readonly messageIds: readonly Uint8Array[];
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
  /** Stores: the mailboxes are a call's keys, so a mailbox's calls commit in order, never two at once. */
  private readonly stores = new GroupCommit<StoreCall, StoreResult[]>({
    concurrency: STORE_COMMITS_IN_FLIGHT,
    maxWeight: STORE_GROUP_COMMIT_MAX,
    weight: (call) => call.envelopes.length,
    keys: (call) => call.envelopes.map((e) => e.recipient),
    run: (group) => this.commitGroup(group),
  });
  /**
   * Group delete of acks: one DELETE at a time, carrying every ack waiting when it starts (an ack
   * is one statement anyway, but at 1,000 msgs/s one per message kept a PostgreSQL backend waking
   * a thousand times a second beside the group commits).
   */
  private readonly acks = new GroupCommit<AckCall, number>({ run: (group) => this.deleteGroup(group) });

  constructor(
    private readonly db: RelayDatabase,
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'mail'>,
    @InjectRelayClock() private readonly clock: RelayClock,
    private readonly metrics: RelayMetrics,
  ) {
    this.mail = options.mail;
  }

  /**
   * Group commit (database/group-commit.ts): a call is stored in the next transaction that starts,
   * together with every other call waiting then (STORE_COMMITS_IN_FLIGHT transactions at once on
   * disjoint mailboxes, STORE_GROUP_COMMIT_MAX envelopes each). An idle relay starts a transaction
   * at once, so a lone send waits for nothing; under load, one transaction carries many sends. Each
   * call still gets its own results, and only after the transaction holding its envelopes
   * committed; a failed transaction fails every call in it (nothing of it was stored).
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
    return this.stores.submit({ sender, envelopes });
  }

  /** One group's transaction; each call's results, in the group's order. */
  private async commitGroup(group: readonly StoreCall[]): Promise<StoreResult[][]> {
    const results = await this.commit(
      group.flatMap((call) => call.envelopes.map((envelope) => ({ sender: call.sender, envelope }))),
    );
    let offset = 0;
    return group.map((call) => {
      const own = results.slice(offset, offset + call.envelopes.length);
      offset += call.envelopes.length;
      return own;
    });
  }

  /**
   * One transaction storing `batch` (envelopes of one or more senders), results in batch order:
   * one call of the `usm_store_mail` function (migrations/1795800000000-store-mail-function.ts),
   * which is its own transaction and one round trip. It locks the batch's mailboxes, then checks
   * duplicates, reads each mailbox's count (kept by triggers) and inserts what fits, in one query
   * that sees every store committed before the locks were granted: the quota holds across nodes.
   * One round trip because each is a wake-up of the relay and of a PostgreSQL backend, and those
   * wake-ups, not the work, set the store's latency.
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
    return this.acks.submit({ recipient, messageIds });
  }

  /** One DELETE for a group of acks; how many rows each call deleted, in the group's order. */
  private async deleteGroup(group: readonly AckCall[]): Promise<number[]> {
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
      const counts = group.map(
        (call) =>
          call.messageIds.filter((id) =>
            deleted.delete(`${call.recipient}\u0000${asBuffer(id).toString('hex')}`),
          ).length,
      );
      this.metrics.message('acked', rows.length);
      return counts;
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
