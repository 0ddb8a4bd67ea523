import { type AddressString, MAX_FETCH_PAGE, MAX_FETCH_PAGE_BYTES, type MailItem } from '@usm/protocol';
import { mailEvents } from './mail-push.service.js';

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
