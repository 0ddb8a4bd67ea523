import { describe, expect, it } from '@jest/globals';
import type { AddressString, MailItem } from '@usm/protocol';
import fc from 'fast-check';
import { MailIntake, type MailPage } from './mail-intake.js';

const SENDER = 'sender' as AddressString;
const item = (position: number): MailItem => ({
  envelope: new Uint8Array([position % 256]),
  sender: SENDER,
  receivedAt: position,
  cursor: String(position),
});
const positions = (mail: readonly MailItem[]) => mail.map((m) => Number(m.cursor));

/**
 * A mailbox as the relay keeps it (positions grow in store order; a page holds the mail above a
 * cursor; acked mail is deleted), whose fetch requests the test answers one at a time: a page is
 * read when it is served.
 */
class Mailbox {
  /** Every position ever stored. */
  readonly stored: number[] = [];
  /** Stored and not acked. */
  held: number[] = [];
  readonly requests: { cursor: string | null; serve: () => void }[] = [];
  readonly cursors: (string | null)[] = [];
  #next = 1;

  constructor(private readonly pageSize = 3) {}

  store(): number {
    const p = this.#next++;
    this.stored.push(p);
    this.held.push(p);
    return p;
  }

  fetchPage = (cursor: string | null): Promise<MailPage> => {
    this.cursors.push(cursor);
    return new Promise((resolve) => {
      this.requests.push({
        cursor,
        serve: () => {
          const after = cursor === null ? 0 : Number(cursor);
          const rest = this.held.filter((p) => p > after);
          const page = rest.slice(0, this.pageSize);
          resolve({
            mail: page.map(item),
            cursor: rest.length > page.length ? String(page.at(-1)) : null,
          });
        },
      });
    });
  };

  /** Answers the oldest open request; false when none is open. */
  async serve(): Promise<boolean> {
    const r = this.requests.shift();
    if (!r) return false;
    r.serve();
    await settle();
    return true;
  }

  async serveAll(): Promise<void> {
    while (await this.serve());
  }

  ack(mail: readonly MailItem[]): void {
    const gone = new Set(positions(mail));
    this.held = this.held.filter((p) => !gone.has(p));
  }
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function intakeOn(box: Mailbox, maxBuffered?: number) {
  const processed: number[] = [];
  const errors: unknown[] = [];
  const intake = new MailIntake({
    fetchPage: box.fetchPage,
    process: async (mail) => {
      processed.push(...positions(mail));
      box.ack(mail); // the client acks what it persisted; the relay deletes it
    },
    onError: (err) => void errors.push(err),
    ...(maxBuffered === undefined ? {} : { maxBuffered }),
  });
  return { intake, processed, errors };
}

describe('MailIntake', () => {
  it('holds pushes until the backlog is fetched, then processes only the newer ones, in mailbox order', async () => {
    const box = new Mailbox();
    for (let i = 0; i < 7; i++) box.store();
    const { intake, processed } = intakeOn(box);
    const fetched = intake.fetchAll();
    await box.serve(); // page 1..3
    // New mail, pushed out of order while the backlog is still being fetched (8 before 9 stored).
    const p8 = box.store();
    const p9 = box.store();
    await intake.pushed([item(p9)]);
    await intake.pushed([item(p8)]);
    expect(processed).toEqual([1, 2, 3]);
    await box.serveAll();
    await fetched;
    // 8 and 9 were stored before the last page was read: they came in it, and the pushes are dropped.
    expect(processed).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(intake.caughtUp).toBe(true);
    await intake.pushed([item(box.store())]);
    expect(processed).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('processes pushes stored after the last page was read once the fetch ends, sorted by position', async () => {
    const box = new Mailbox();
    box.store();
    const { intake, processed } = intakeOn(box);
    const fetched = intake.fetchAll();
    box.requests.shift()!.serve(); // the only page, [1], is read now
    // Stored and pushed (out of order) before the client handled that page.
    const p2 = box.store();
    const p3 = box.store();
    await intake.pushed([item(p3), item(p2)]);
    await fetched;
    expect(processed).toEqual([1, 2, 3]);
    expect(box.cursors).toEqual([null]);
  });

  it('mail:sync during a fetch adds a round from the highest position seen, and pushes wait for it', async () => {
    const box = new Mailbox(2);
    for (let i = 0; i < 3; i++) box.store();
    const { intake, processed } = intakeOn(box);
    const fetched = intake.fetchAll();
    await box.serve(); // [1, 2]
    await box.serve(); // [3], last page
    await fetched;
    expect(intake.caughtUp).toBe(true);
    // The relay withheld 4 and 5 (socket backlog), then says so; a push of 6 follows the sync.
    box.store();
    box.store();
    const synced = intake.sync();
    expect(intake.caughtUp).toBe(false);
    await intake.pushed([item(box.store())]);
    expect(processed).toEqual([1, 2, 3]);
    const again = intake.sync(); // a second sync while the first runs: joins it, one more round
    await box.serveAll();
    await Promise.all([synced, again]);
    expect(processed).toEqual([1, 2, 3, 4, 5, 6]);
    expect(box.cursors).toEqual([null, '2', null, '5', '6']);
  });

  it('drops held pushes past maxBuffered and fetches one more round instead (nothing lost)', async () => {
    const box = new Mailbox(2);
    const { intake, processed } = intakeOn(box, 2);
    const fetched = intake.fetchAll();
    for (let i = 0; i < 4; i++) await intake.pushed([item(box.store())]);
    await box.serveAll();
    await fetched;
    expect(processed).toEqual([1, 2, 3, 4]);
  });

  it('after reset, a fetch of the old connection neither joins nor marks caught up; a push starts a new fetch', async () => {
    const box = new Mailbox();
    box.store();
    const { intake, processed } = intakeOn(box);
    const old = intake.fetchAll();
    intake.reset(); // the connection dropped and came back before the page arrived
    await intake.pushed([item(box.store())]);
    expect(box.requests).toHaveLength(2); // the old request and the new connection's fetch
    await box.serveAll();
    await old;
    // The old page is handled too, and the push it also carried: the client dedups by message id.
    expect(processed).toEqual([1, 2, 2]);
    expect(intake.caughtUp).toBe(true);
  });

  it('property: whatever the interleaving of stores, pushes, withheld pushes, syncs and pages, every message is processed once, in store order', async () => {
    type Op = 'send' | 'serve' | 'withhold' | 'drain';
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Op>('send', 'send', 'serve', 'withhold', 'drain'), { maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        async (ops, pageSize) => {
          const box = new Mailbox(pageSize);
          for (let i = 0; i < 5; i++) box.store(); // a backlog
          const { intake, processed, errors } = intakeOn(box);
          const connect = intake.fetchAll();
          let behind = false;
          const syncs: Promise<void>[] = [];
          for (const op of ops) {
            if (op === 'send') {
              const p = box.store();
              if (!behind) await intake.pushed([item(p)]);
            } else if (op === 'serve') {
              await box.serve();
            } else if (op === 'withhold') {
              behind = true;
            } else if (behind) {
              behind = false;
              syncs.push(intake.sync());
            }
          }
          if (behind) syncs.push(intake.sync());
          await box.serveAll();
          await Promise.all([connect, ...syncs]);
          expect(errors).toEqual([]);
          // Exactly once and in order: what a page and a push both carried is handled once here.
          expect(processed).toEqual(box.stored);
        },
      ),
      { numRuns: 500 },
    );
  });
});
