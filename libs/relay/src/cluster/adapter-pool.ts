/**
 * The relay's pool as the socket.io PostgreSQL adapter sees it. The adapter keeps one client
 * checked out for LISTEN and attaches no 'error' listener to it; pg-pool removes its own from
 * checked-out clients, so a lost database connection would be an unhandled 'error' that ends the
 * process. Here that client gets a listener that reports the failure and hands the client back as
 * broken (freeing its pool slot); the adapter reconnects on the 'end' that follows.
 *
 * A client the adapter releases (on close) is discarded, never pooled: it is still LISTENing.
 * pg-pool ends it without waiting (its `end()` resolves before the sockets close), so `released()`
 * waits for the pool's 'remove' of each one: otherwise a database stopped right after the app (the
 * sample app's embedded PostgreSQL) terminates it and its 'error' is logged.
 *
 * Notices must not be lost to a dropped connection (docs/relay.md, "Notices that recover"):
 * - Publishing: the adapter sends each notice as one `pg_notify` on a pooled connection and only
 *   logs a failure. A failed `pg_notify` is sent again (NOTIFY_RETRY_DELAYS_MS) on another
 *   connection; a notice that arrives twice pushes mail twice, which clients drop by message id.
 * - Listening: notices sent while this node's LISTEN connection was down are gone. Every LISTEN
 *   after the first one (a reconnect) is reported (`relistened`), so the node can tell its sockets
 *   to fetch what was stored meanwhile.
 */
import type pg from 'pg';

/**
 * Pauses before a failed `pg_notify` is sent again: the failure is usually one terminated
 * connection, and the next try takes another from the pool.
 */
export const NOTIFY_RETRY_DELAYS_MS = [50, 250, 1_000, 3_000] as const;

/** What the wrapper reports. */
export interface AdapterPoolEvents {
  /** A connection of the adapter failed; it is released as broken and the adapter reconnects. */
  failed(err: Error): void;
  /** A LISTEN after the first one succeeded: notices sent while it was down are gone. */
  relistened(): void;
}

export class AdapterPool {
  private isClosed = false;
  private listens = 0;
  /** Settle when the adapter's released connections have ended. */
  private readonly releases = new Set<Promise<void>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly events: AdapterPoolEvents,
  ) {}

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Before the adapter closes: no more retries, and a late reconnect gets no connection. */
  close(): void {
    this.isClosed = true;
  }

  /** Resolves when every connection the adapter released has ended. */
  async released(): Promise<void> {
    await Promise.all(this.releases);
  }

  /** The wrapper to give the adapter. */
  asPool(): pg.Pool {
    return {
      query: (...args: unknown[]) => this.query(args),
      connect: () => this.connect(),
    } as unknown as pg.Pool;
  }

  private async query(args: unknown[]): Promise<unknown> {
    const query = (this.pool.query as (...a: unknown[]) => Promise<unknown>).bind(this.pool);
    if (!(typeof args[0] === 'string' && args[0].includes('pg_notify('))) return query(...args);
    for (let attempt = 0; ; attempt++) {
      try {
        return await query(...args);
      } catch (err) {
        const delay = NOTIFY_RETRY_DELAYS_MS[attempt];
        if (delay === undefined || this.isClosed) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    const client = await this.pool.connect();
    const clientQuery = (client.query as (...a: unknown[]) => unknown).bind(client);
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const result = clientQuery(...args);
      if (typeof args[0] === 'string' && args[0].startsWith('LISTEN ') && result instanceof Promise) {
        void result.then(
          () => {
            if (++this.listens > 1) this.events.relistened();
          },
          () => undefined,
        );
      }
      return result;
    };
    if (this.isClosed) {
      // A reconnect that raced the shutdown: give the slot back and leave the adapter waiting
      // (a rejection would schedule yet another reconnect, on a pool about to end).
      client.release(true);
      return new Promise<never>(() => undefined);
    }
    const release = client.release.bind(client);
    let released = false;
    client.release = (err?: Error | boolean) => {
      if (released) return;
      released = true;
      const ended = new Promise<void>((resolve) => {
        const onRemove = (removed: pg.PoolClient) => {
          if (removed !== client) return;
          this.pool.off('remove', onRemove);
          this.releases.delete(ended);
          resolve();
        };
        this.pool.on('remove', onRemove);
      });
      this.releases.add(ended);
      release(err ?? true);
    };
    client.on('error', (err: Error) => {
      this.events.failed(err);
      client.release(err);
    });
    return client;
  }
}
