import type { AddressString, MailNotice } from '@usm/protocol';
import { noticeBatches } from './mail-notices.service.js';

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
