/**
 * Mail intake: one order for the relay's two ways of handing over mail, pushes and fetch pages.
 *
 * The relay stores mail before it pushes it, and a mailbox's positions (`MailItem.cursor`) grow
 * in store order. A client that processed a pushed message before older mail still waiting in
 * its mailbox (a backlog being fetched page by page, or pushes the relay withheld) would find the
 * pushed one far ahead in its ratchet chain (more than MAX_SKIP ahead: it fails and, worse, was
 * acked and lost). So:
 *  - Until a fetch of every page has completed on this connection ("caught up"), pushed mail is
 *    only buffered. When the fetch ends, buffered items at or below the highest position it saw
 *    came in a page too (or were acked); those above it were stored after its last page was read,
 *    so they are newer than all of it, and they are processed then, in position order.
 *  - Once caught up, pushes are processed as they come (they are already in store order).
 *  - `mail:sync` (the relay withheld pushes, or may have missed other nodes' notices) and a new
 *    connection (`reset`) end "caught up": the next fetch runs and pushes wait for it. A sync that
 *    arrives during a fetch adds one more round, from the highest position seen.
 *  - A gap in a conversation (`refetch`) also fetches every page: the mail that fills it may be
 *    stored and never pushed (its node died between storing and telling the others).
 *  - Buffered pushes are bounded (`maxBuffered`): past it they are dropped and the fetch takes one
 *    more round instead. Nothing is lost by dropping a push: the relay keeps mail until acked.
 */
import { MAX_FETCH_PAGE, type MailItem } from '@usm/protocol';

export interface MailPage {
  readonly mail: readonly MailItem[];
  readonly cursor: string | null;
}

export interface MailIntakeOptions {
  /** One `fetch` request: the page after `cursor` (a mailbox position), or the first one. */
  fetchPage(cursor: string | null): Promise<MailPage>;
  /** Decrypts and persists mail, in the order given per sender; resolves when all of it was handled. */
  process(mail: readonly MailItem[]): Promise<void>;
  /** Called with what a fetch that no caller awaits threw. */
  onError(err: unknown): void;
  /** Pushed items held while a fetch runs, at most. @default MAX_BUFFERED_PUSHES */
  maxBuffered?: number;
}

/** Pushed items held while not caught up: twenty pushes of a full page. */
export const MAX_BUFFERED_PUSHES = 20 * MAX_FETCH_PAGE;

const position = (item: MailItem): bigint => BigInt(item.cursor);

/** Mailbox order of two items (their positions are decimal integers): a sort comparator. */
export function byPosition(a: MailItem, b: MailItem): number {
  const x = position(a);
  const y = position(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export class MailIntake {
  readonly #o: MailIntakeOptions;
  #caughtUp = false;
  #buffered: MailItem[] = [];
  /** The buffer overflowed or a `mail:sync` came: the running fetch goes one more round. */
  #again = false;
  /** Bumped by `reset`: a fetch of an older connection neither joins nor marks caught up. */
  #epoch = 0;
  #running: { epoch: number; done: Promise<void> } | undefined;

  constructor(options: MailIntakeOptions) {
    this.#o = options;
  }

  /** True when pushes are processed as they come. */
  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** A new connection (or none): pushes wait for the next complete fetch. */
  reset(): void {
    this.#epoch++;
    this.#caughtUp = false;
    this.#buffered = [];
    this.#again = false;
    this.#running = undefined;
  }

  /**
   * A `mail` push: processed now when caught up, else held for the running fetch (one is started
   * when none runs on this connection, so held pushes never wait for the periodic fetch).
   */
  pushed(mail: readonly MailItem[]): Promise<void> {
    if (this.#caughtUp) return this.#o.process(mail);
    const max = this.#o.maxBuffered ?? MAX_BUFFERED_PUSHES;
    if (this.#buffered.length + mail.length > max) {
      this.#buffered = [];
      this.#again = true;
    } else {
      this.#buffered.push(...mail);
    }
    if (this.#running?.epoch !== this.#epoch) this.fetchAll().catch((err: unknown) => this.#o.onError(err));
    return Promise.resolve();
  }

  /** `mail:sync`: stored mail was not pushed; fetch every page, pushes wait until then. */
  sync(): Promise<void> {
    this.#caughtUp = false;
    this.#again = true;
    return this.fetchAll();
  }

  /**
   * A conversation has a gap (a later message arrived, an earlier one did not): the earlier one
   * may be stored and not pushed (a notice lost with a node). Fetches every page now, or one more
   * round when a fetch is running; pushes are still processed as they come.
   */
  refetch(): Promise<void> {
    this.#again = true;
    return this.fetchAll();
  }

  /** Fetches every page (one run at a time: a second call joins the first). */
  fetchAll(): Promise<void> {
    if (this.#running?.epoch === this.#epoch) return this.#running.done;
    const epoch = this.#epoch;
    const done = this.#run(epoch).finally(() => {
      if (this.#running?.done === done) this.#running = undefined;
    });
    this.#running = { epoch, done };
    return done;
  }

  async #run(epoch: number): Promise<void> {
    let high = -1n;
    let from: string | null = null;
    do {
      this.#again = false;
      let cursor = from;
      do {
        const page = await this.#o.fetchPage(cursor);
        for (const item of page.mail) {
          const p = position(item);
          if (p > high) high = p;
        }
        await this.#o.process(page.mail);
        cursor = page.cursor;
      } while (cursor !== null);
      if (epoch !== this.#epoch) return;
      // Another round continues above the highest position seen: anything stored since is there.
      from = high >= 0n ? high.toString() : null;
    } while (this.#again);
    const newer = this.#buffered.filter((item) => position(item) > high).sort(byPosition);
    this.#buffered = [];
    this.#caughtUp = true;
    if (newer.length > 0) await this.#o.process(newer);
  }
}
