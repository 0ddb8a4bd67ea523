import fc from 'fast-check';
import { ProtocolErrorCode } from '../errors.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { MAX_SEQUENCE } from '../limits.js';
import { ReorderBuffer, SendSequence, type Released } from './reorder-buffer.js';

/** A clock the test moves by hand. */
function fakeClock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const seqs = (released: Released<string>[]) => released.map((r) => r.sequence);

describe('SendSequence', () => {
  it('counts from 0 (or where it left off) and stops before wrapping', () => {
    const s = new SendSequence();
    expect([s.take(), s.take(), s.take()]).toEqual([0, 1, 2]);
    expect(s.next).toBe(3);
    const resumed = new SendSequence(MAX_SEQUENCE);
    expect(resumed.take()).toBe(MAX_SEQUENCE);
    expectProtocolError(
      () => resumed.take(),
      ProtocolErrorCode.TooLarge,
      'sequence: exhausted, reset the session',
    );
  });
});

describe('ReorderBuffer', () => {
  it('releases in-order messages at once', () => {
    const b = new ReorderBuffer<string>();
    expect(b.push(0, 'a')).toEqual([{ sequence: 0, item: 'a', skippedBefore: 0, late: false }]);
    expect(seqs(b.push(1, 'b'))).toEqual([1]);
    expect(b.next).toBe(2);
  });

  it('holds messages ahead of a gap and releases the run when the gap fills', () => {
    const b = new ReorderBuffer<string>();
    expect(b.push(2, 'c')).toEqual([]);
    expect(b.push(1, 'b')).toEqual([]);
    expect(b.size).toBe(2);
    expect(b.push(0, 'a').map((r) => r.item)).toEqual(['a', 'b', 'c']);
    expect(b.size).toBe(0);
    expect(b.next).toBe(3);
  });

  it('drops a second message with a held sequence number', () => {
    const b = new ReorderBuffer<string>();
    b.push(1, 'first');
    b.push(1, 'second');
    expect(b.push(0, 'a').map((r) => r.item)).toEqual(['a', 'first']);
  });

  it('gives a gap up after the timeout, reports it, and releases a late arrival as late', () => {
    const clock = fakeClock();
    const b = new ReorderBuffer<string>({ timeoutMs: 10_000, now: clock.now });
    b.push(0, 'a');
    expect(b.push(3, 'd')).toEqual([]);
    expect(b.deadline).toBe(11_000);
    clock.advance(9_999);
    expect(b.expire()).toEqual([]);
    clock.advance(1);
    expect(b.expire()).toEqual([{ sequence: 3, item: 'd', skippedBefore: 2, late: false }]);
    expect(b.next).toBe(4);
    expect(b.deadline).toBeUndefined();
    expect(b.push(1, 'b')).toEqual([{ sequence: 1, item: 'b', skippedBefore: 0, late: true }]);
  });

  it('checks the timeout on push too', () => {
    const clock = fakeClock();
    const b = new ReorderBuffer<string>({ timeoutMs: 100, now: clock.now });
    b.push(2, 'c');
    clock.advance(100);
    expect(b.push(5, 'f')).toEqual([{ sequence: 2, item: 'c', skippedBefore: 2, late: false }]);
    expect(b.size).toBe(1);
  });

  it('gives the oldest gap up at once when the bound is passed', () => {
    const b = new ReorderBuffer<string>({ maxBuffered: 3 });
    for (const s of [2, 3, 5]) expect(b.push(s, `m${s}`)).toEqual([]);
    const out = b.push(6, 'm6');
    expect(out).toEqual([
      { sequence: 2, item: 'm2', skippedBefore: 2, late: false },
      { sequence: 3, item: 'm3', skippedBefore: 0, late: false },
    ]);
    expect(b.size).toBe(2);
    expect(b.next).toBe(4);
  });

  it('never holds more than maxBuffered, and every message is either released or still held', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 120 }),
        fc.integer({ min: 1, max: 8 }),
        (order, maxBuffered) => {
          const b = new ReorderBuffer<number>({ maxBuffered, timeoutMs: Infinity });
          const released: number[] = [];
          for (const s of order) {
            released.push(...b.push(s, s).map((r) => r.item));
            expect(b.size).toBeLessThanOrEqual(maxBuffered);
          }
          // Every distinct sequence number pushed was released (at least once) or is still held.
          const distinct = new Set(order);
          expect(new Set(released).size + b.size).toBe(distinct.size);
        },
      ),
    );
  });

  it('restores any permutation to order when nothing is lost', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([...Array(40).keys()], { minLength: 40, maxLength: 40 }), (order) => {
        const b = new ReorderBuffer<number>({ maxBuffered: 64, timeoutMs: Infinity });
        const released = order.flatMap((s) => b.push(s, s));
        expect(released.map((r) => r.item)).toEqual([...Array(40).keys()]);
        expect(released.every((r) => !r.late && r.skippedBefore === 0)).toBe(true);
      }),
    );
  });

  it('refuses sequence numbers outside u32', () => {
    const b = new ReorderBuffer<string>();
    expectProtocolError(
      () => b.push(MAX_SEQUENCE + 1, 'x'),
      ProtocolErrorCode.Malformed,
      `sequence: expected an integer from 0 to ${MAX_SEQUENCE}`,
    );
    expectProtocolError(
      () => b.push(1.5, 'x'),
      ProtocolErrorCode.Malformed,
      `sequence: expected an integer from 0 to ${MAX_SEQUENCE}`,
    );
  });
});
