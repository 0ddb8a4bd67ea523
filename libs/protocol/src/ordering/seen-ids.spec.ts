import fc from 'fast-check';
import { ProtocolErrorCode } from '../errors.js';
import { messageId } from '../../test/arbitraries.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { arbitraryBytes, checkDecoder, fuzz, largestSlice, mutated, newStats } from '../../test/fuzz.js';
import { MAX_SEEN_IDS_CAPACITY } from '../limits.js';
import { SEEN_IDS_VERSION, SeenMessageIds } from './seen-ids.js';

const id = (n: number) => new Uint8Array(16).fill(n);

describe('SeenMessageIds', () => {
  it('tells a duplicate apart', () => {
    const seen = new SeenMessageIds();
    expect(seen.capacity).toBe(10_000);
    expect(seen.add(id(1))).toBe(true);
    expect(seen.add(id(1))).toBe(false);
    expect(seen.has(id(1))).toBe(true);
    expect(seen.has(id(2))).toBe(false);
  });

  it('forgets the oldest first once full', () => {
    const seen = new SeenMessageIds(3);
    for (const n of [1, 2, 3, 4]) seen.add(id(n));
    expect(seen.size).toBe(3);
    expect(seen.has(id(1))).toBe(false);
    expect([...seen.ids()].map((i) => i[0])).toEqual([2, 3, 4]);
    seen.add(id(5));
    seen.add(id(6));
    expect([...seen.ids()].map((i) => i[0])).toEqual([4, 5, 6]);
  });

  it('has the documented serialized form', () => {
    const seen = new SeenMessageIds(3);
    for (const n of [1, 2, 3, 4]) seen.add(id(n));
    const bytes = seen.encode();
    expect(Array.from(bytes.subarray(0, 9))).toEqual([SEEN_IDS_VERSION, 0, 0, 0, 3, 0, 0, 0, 3]);
    expect(bytes.length).toBe(9 + 48);
    expect(bytes[9]).toBe(2);
    expect(bytes[9 + 32]).toBe(4);
  });

  it('survives a restart: decode(encode()) keeps the ids, their order and the capacity', () => {
    fc.assert(
      fc.property(
        fc.array(messageId, { maxLength: 40 }),
        fc.integer({ min: 1, max: 30 }),
        (ids, capacity) => {
          const seen = new SeenMessageIds(capacity);
          for (const i of ids) seen.add(i);
          const back = SeenMessageIds.decode(seen.encode());
          expect(back.capacity).toBe(capacity);
          expect([...back.ids()]).toEqual([...seen.ids()]);
          expect(back.encode()).toEqual(seen.encode());
          // The restored memory evicts in the same order as the original.
          const next = id(0xee);
          seen.add(next);
          back.add(next);
          expect(back.encode()).toEqual(seen.encode());
        },
      ),
    );
  });

  it('refuses impossible claims before allocating', () => {
    const header = (capacity: number, count: number) => {
      const b = new Uint8Array(9);
      b[0] = SEEN_IDS_VERSION;
      new DataView(b.buffer).setUint32(1, capacity, false);
      new DataView(b.buffer).setUint32(5, count, false);
      return b;
    };
    const slice = largestSlice(() => {
      expectProtocolError(
        () => SeenMessageIds.decode(header(2 ** 32 - 1, 2 ** 32 - 1)),
        ProtocolErrorCode.TooLarge,
        `seen ids: capacity ${2 ** 32 - 1}, the limit is ${MAX_SEEN_IDS_CAPACITY}`,
      );
      expectProtocolError(
        () => SeenMessageIds.decode(header(MAX_SEEN_IDS_CAPACITY, MAX_SEEN_IDS_CAPACITY)),
        ProtocolErrorCode.Malformed,
        'seen ids: 1000000 ids need 16000000 bytes, 0 present',
      );
      expectProtocolError(
        () => SeenMessageIds.decode(header(2, 3)),
        ProtocolErrorCode.Malformed,
        'seen ids: count 3 exceeds capacity 2',
      );
      expectProtocolError(
        () => SeenMessageIds.decode(header(0, 0)),
        ProtocolErrorCode.Malformed,
        'seen ids: capacity must be an integer of at least 1',
      );
    });
    expect(slice).toBe(0);
  });

  it('refuses duplicates and other versions', () => {
    const seen = new SeenMessageIds(4);
    seen.add(id(1));
    seen.add(id(2));
    const bytes = seen.encode();
    bytes.set(id(1), 9 + 16);
    expectProtocolError(
      () => SeenMessageIds.decode(bytes),
      ProtocolErrorCode.Malformed,
      'seen ids: id 1 is a duplicate',
    );
    bytes[0] = 2;
    expectProtocolError(
      () => SeenMessageIds.decode(bytes),
      ProtocolErrorCode.UnsupportedVersion,
      'seen ids: version 2 is not supported (expected 1)',
    );
  });

  const allowed = [
    ProtocolErrorCode.Malformed,
    ProtocolErrorCode.TooLarge,
    ProtocolErrorCode.UnsupportedVersion,
  ];
  const decode = (b: Uint8Array) => SeenMessageIds.decode(b);
  const encode = (s: SeenMessageIds) => s.encode();

  it('fuzz: arbitrary bytes', () => {
    fuzz(arbitraryBytes(120), (b) => checkDecoder(decode, encode, allowed, b));
  });

  it('fuzz: arbitrary bytes behind a valid version', () => {
    const stats = newStats();
    fuzz(fc.uint8Array({ minLength: 8, maxLength: 120 }), (b) =>
      checkDecoder(decode, encode, allowed, Uint8Array.of(SEEN_IDS_VERSION, ...b), stats),
    );
    expect(stats.codes.get(ProtocolErrorCode.TooLarge)).toBeGreaterThan(0);
  });

  it('fuzz: mutated valid memories', () => {
    const stats = newStats();
    const valid = fc
      .tuple(fc.array(messageId, { maxLength: 6 }), fc.integer({ min: 1, max: 8 }))
      .map(([ids, capacity]) => {
        const seen = new SeenMessageIds(capacity);
        for (const i of ids) seen.add(i);
        return seen.encode();
      });
    fuzz(mutated(valid), (b) => checkDecoder(decode, encode, allowed, b, stats));
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
