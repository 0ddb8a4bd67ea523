/**
 * Keeps the client in step with the relay:
 *  - after each handshake: prekeys (prekeys/prekey-upkeep.ts), every page of pending mail, then
 *    the whole outbox made due and flushed. `connect()` resolves once that first sync is done. A
 *    step that fails while the connection holds (a request timed out under load) runs the sync
 *    again after SYNC_RETRY_MS, so a connected client is never left half-synced;
 *  - while connected, a fetch of every page each `fetchIntervalMs` (a push the relay could not
 *    deliver is picked up without waiting for a reconnect);
 *  - a conversation with a gap starts a fetch at once (at most one per GAP_FETCH_INTERVAL_MS):
 *    the missing mail may be stored and never pushed;
 *  - `mail` pushes and `mail:sync` go through MailIntake (inbox/mail-intake.ts), which keeps one
 *    order for pushes and fetch pages.
 */
import type { MailItem } from '@usm/protocol';
import { type ConnectionStatus, MAX_BINARY_ATTACHMENTS, type RelayConnection } from '../connection.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { MailIntake } from '../inbox/mail-intake.js';
import { type Runtime, type TimerHandle, reportUnlessOffline } from '../runtime.js';

/** Least time between two fetches started because a conversation has a gap. */
export const GAP_FETCH_INTERVAL_MS = 1_000;
/** Pause before a sync that failed on a live connection runs again. */
export const SYNC_RETRY_MS = 1_000;

export interface SyncLoopOptions extends Runtime {
  readonly connection: Pick<RelayConnection, 'connected' | 'request' | 'start'>;
  /** Decrypts and persists mail (receive/receive-pipeline.ts). */
  readonly receive: (mail: readonly MailItem[]) => Promise<void>;
  /** Prekey upkeep on connect (prekeys/prekey-upkeep.ts). */
  readonly syncPrekeys: () => Promise<void>;
  /** Makes the outbox due and flushes it (outbox/outbox-pump.ts). */
  readonly resumeOutbox: () => Promise<void>;
  /** Pending mail is also fetched this often while connected. */
  readonly fetchIntervalMs: number;
  /** Whether the connection reconnects after a drop. */
  readonly reconnect: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SyncLoop {
  readonly #o: SyncLoopOptions;
  readonly #intake: MailIntake;
  readonly #waiters: Waiter[] = [];
  #synced = false;
  #retryTimer: TimerHandle;
  #sweepTimer: TimerHandle;
  #gapTimer: TimerHandle;
  #lastGapFetchAt = -Infinity;

  constructor(options: SyncLoopOptions) {
    this.#o = options;
    this.#intake = new MailIntake({
      fetchPage: (cursor) =>
        options.connection.request(
          'fetch',
          cursor === null ? { limit: MAX_BINARY_ATTACHMENTS } : { cursor, limit: MAX_BINARY_ATTACHMENTS },
        ),
      process: (mail) => options.receive(mail),
      onError: (err) => reportUnlessOffline(options, err),
    });
  }

  /** Starts the connection; resolves after the first sync on it (see MessengerClient.connect). */
  connect(): Promise<void> {
    if (this.#synced && this.#o.connection.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#o.connection.start();
    });
  }

  /** The handshake completed on a (re)connect. */
  authenticated(): void {
    void this.#sync();
  }

  /** The connection's state changed. */
  status(status: ConnectionStatus): void {
    if (status.state !== 'connected') this.#synced = false;
    // Every new connection fetches before it processes pushes (inbox/mail-intake.ts).
    this.#intake.reset();
    // Without reconnection nothing will try again: a pending connect() fails now.
    if (status.state === 'disconnected' && !this.#o.reconnect && status.reason !== 'closed') {
      this.#settle(
        new ClientError(
          ClientErrorCode.NotConnected,
          `connect: the connection to the relay failed (${status.reason ?? 'dropped'}) and reconnect is off`,
        ),
      );
    }
  }

  /** The connection failed: reported; a refusal by the relay also fails a pending connect(). */
  connectionError(err: ClientError): void {
    this.#o.report(err);
    if (
      ClientError.is(err, ClientErrorCode.ClockSkew) ||
      ClientError.is(err, ClientErrorCode.HandshakeFailed)
    ) {
      this.#settle(err);
    }
  }

  /** A `mail` push. */
  pushed(mail: readonly MailItem[]): void {
    void this.#intake.pushed(mail);
  }

  /** A `mail:sync` push: stored mail was not pushed; fetch every page. */
  mailSync(): void {
    this.#intake.sync().catch((err: unknown) => reportUnlessOffline(this.#o, err));
  }

  /**
   * A conversation waits for an earlier message: fetch now (it may be stored and not pushed), at
   * most once per GAP_FETCH_INTERVAL_MS; a gap found within that time is fetched at its end.
   */
  fetchForGap(): void {
    const { connection, isClosed, clock, scheduler } = this.#o;
    if (this.#gapTimer !== undefined || !connection.connected || isClosed()) return;
    const wait = Math.max(0, this.#lastGapFetchAt + GAP_FETCH_INTERVAL_MS - clock.now());
    this.#gapTimer = scheduler.setTimeout(() => {
      this.#gapTimer = undefined;
      if (!connection.connected || isClosed()) return;
      this.#lastGapFetchAt = clock.now();
      this.#intake.refetch().catch((err: unknown) => reportUnlessOffline(this.#o, err));
    }, wait);
  }

  /** Stops every timer; a pending connect() rejects with `err`. */
  close(err: ClientError): void {
    const { scheduler } = this.#o;
    for (const timer of [this.#retryTimer, this.#sweepTimer, this.#gapTimer]) scheduler.clearTimeout(timer);
    this.#retryTimer = this.#sweepTimer = this.#gapTimer = undefined;
    this.#settle(err);
  }

  async #sync(): Promise<void> {
    const { connection, scheduler, isClosed } = this.#o;
    scheduler.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    try {
      await this.#o.syncPrekeys();
      await this.#intake.fetchAll();
      await this.#o.resumeOutbox();
      if (!connection.connected) return; // dropped meanwhile: the next connect syncs again
      this.#synced = true;
      this.#settle();
      this.#scheduleSweep();
    } catch (err) {
      reportUnlessOffline(this.#o, err);
      if (connection.connected && !isClosed()) {
        this.#retryTimer = scheduler.setTimeout(() => void this.#sync(), SYNC_RETRY_MS);
      }
    }
  }

  /** The periodic fetch while connected (see `fetchIntervalMs`). */
  #scheduleSweep(): void {
    const { connection, scheduler, isClosed } = this.#o;
    scheduler.clearTimeout(this.#sweepTimer);
    if (isClosed()) return;
    this.#sweepTimer = scheduler.setTimeout(() => {
      if (!connection.connected || isClosed()) return; // the next connect fetches and re-arms
      this.#intake
        .fetchAll()
        .catch((err: unknown) => reportUnlessOffline(this.#o, err))
        .finally(() => this.#scheduleSweep());
    }, this.#o.fetchIntervalMs);
  }

  #settle(err?: unknown): void {
    for (const w of this.#waiters.splice(0)) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }
}
