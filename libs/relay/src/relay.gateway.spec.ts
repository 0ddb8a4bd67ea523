import {
  type AddressString,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  type MailItem,
  type MailNotice,
} from '@usm/protocol';
import { mailEvents, noticeBatches } from './relay.gateway.js';

const notice = (recipient: string, n: number, from = 1): MailNotice => ({
  recipient: recipient as AddressString,
  cursors: Array.from({ length: n }, (_, i) => String(from + i)),
});

describe('noticeBatches', () => {
  it('keeps small notices together and in order', () => {
    const notices = [notice('a', 2), notice('b', 1, 10)];
    expect(noticeBatches(notices, 100)).toEqual([notices]);
    expect(noticeBatches([], 100)).toEqual([]);
  });

  it('splits at the cursor limit, a recipient across batches if need be, losing and repeating nothing', () => {
    const notices = [notice('a', 70), notice('b', 50, 100), notice('c', 250, 200)];
    const batches = noticeBatches(notices, 100);
    for (const batch of batches)
      expect(batch.reduce((n, x) => n + x.cursors.length, 0)).toBeLessThanOrEqual(100);
    expect(batches.map((b) => b.map((x) => `${x.recipient}:${x.cursors.length}`))).toEqual([
      ['a:70', 'b:30'],
      ['b:20', 'c:80'],
      ['c:100'],
      ['c:70'],
    ]);
    // Concatenated, the batches are the notices' cursors, per recipient, in order.
    const flat = batches.flat().flatMap((x) => x.cursors.map((c) => `${x.recipient}:${c}`));
    expect(flat).toEqual(notices.flatMap((x) => x.cursors.map((c) => `${x.recipient}:${c}`)));
  });

  it('keeps each batch under the NOTIFY threshold: many recipients with long addresses', () => {
    const notices = Array.from({ length: 200 }, (_, i) => notice(`${'x'.repeat(120)}-${i}`, 1, i + 1));
    const batches = noticeBatches(notices, 100);
    expect(batches.length).toBeGreaterThan(2);
    for (const batch of batches) expect(Buffer.byteLength(JSON.stringify(batch))).toBeLessThan(8_000);
    expect(batches.flat()).toEqual(notices);
  });
});

describe('mailEvents', () => {
  const item = (bytes: number, n: number): MailItem => ({
    envelope: new Uint8Array(bytes).fill(n % 256),
    sender: 'sender' as AddressString,
    receivedAt: n,
    cursor: String(n),
  });

  it('splits at MAX_FETCH_PAGE items and at MAX_FETCH_PAGE_BYTES, in order, losing nothing', () => {
    const small = Array.from({ length: 2 * MAX_FETCH_PAGE + 1 }, (_, i) => item(10, i));
    expect(mailEvents(small).map((e) => e.length)).toEqual([MAX_FETCH_PAGE, MAX_FETCH_PAGE, 1]);
    expect(mailEvents(small).flat()).toEqual(small);

    const third = Math.floor(MAX_FETCH_PAGE_BYTES / 3);
    const big = Array.from({ length: 7 }, (_, i) => item(third, i));
    const events = mailEvents(big);
    expect(events.map((e) => e.length)).toEqual([3, 3, 1]);
    for (const e of events)
      expect(e.reduce((n, m) => n + m.envelope.length, 0)).toBeLessThanOrEqual(MAX_FETCH_PAGE_BYTES);
    expect(events.flat()).toEqual(big);
    // One item always goes, even alone over the budget; nothing in, nothing out.
    expect(mailEvents([item(MAX_FETCH_PAGE_BYTES + 1, 0)])).toHaveLength(1);
    expect(mailEvents([])).toEqual([]);
  });
});
