import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BinaryReader, type BinaryFault, BinaryWriter } from './binary.js';

class TestError extends Error {
  constructor(
    readonly fault: BinaryFault,
    message: string,
  ) {
    super(message);
  }
}
const reader = (bytes: Uint8Array) => new BinaryReader(bytes, 'thing', (f, m) => new TestError(f, m));
const faultOf = (f: () => unknown): [BinaryFault, string] => {
  try {
    f();
  } catch (err) {
    if (err instanceof TestError) return [err.fault, err.message];
    throw err;
  }
  throw new Error('did not throw');
};

describe('BinaryReader / BinaryWriter', () => {
  it('round-trips every field type, with a size given up front and growing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 600 }),
        (a, b, c, d, bytes) => {
          const size = 1 + 2 + 4 + 8 + 8 + 2 + bytes.length;
          const e = d / 3;
          for (const w of [new BinaryWriter(size), new BinaryWriter()]) {
            const out = w.u8(a).u16(b).u32(c).u64(d).f64(e).u16(bytes.length).bytes(bytes).finish();
            expect(out.length).toBe(size);
            const r = reader(out);
            expect([r.u8('a'), r.u16('b'), r.u32('c'), r.u64('d'), r.f64('e')]).toEqual([a, b, c, d, e]);
            expect(r.bounded(r.u16('n'), 600, 'bytes')).toEqual(bytes);
            r.end();
          }
        },
      ),
    );
  });

  it('names the field and the lengths of each refusal, never the content', () => {
    expect(faultOf(() => reader(new Uint8Array([1])).u16('count'))).toEqual([
      'truncated',
      'thing: truncated at count (needs 2 bytes at offset 0, 1 left)',
    ]);
    expect(faultOf(() => reader(new Uint8Array(10)).bounded(9, 8, 'body'))).toEqual([
      'too-large',
      'thing: body claims 9 bytes, the limit is 8',
    ]);
    expect(faultOf(() => reader(new Uint8Array(3)).end())).toEqual([
      'trailing',
      'thing: 3 unexpected bytes after the end',
    ]);
    expect(faultOf(() => reader(new Uint8Array([2, 0])).optional(1, 'key'))).toEqual([
      'invalid',
      'thing: key presence byte must be 0 or 1, got 2',
    ]);
    expect(faultOf(() => reader(new Uint8Array(8).fill(0xff)).u64('n'))).toEqual([
      'invalid',
      'thing: n exceeds 2^53 - 1',
    ]);
  });

  it('a growing writer keeps every byte across its reallocations', () => {
    const w = new BinaryWriter();
    const expected: number[] = [];
    for (let i = 0; i < 1_000; i++) {
      w.u8(i & 0xff)
        .u16(i)
        .u32(i)
        .bytes(new Uint8Array([i & 0xff, 7]));
      expected.push(i & 0xff, (i >> 8) & 0xff, i & 0xff, 0, 0, (i >> 8) & 0xff, i & 0xff, i & 0xff, 7);
    }
    expect([...w.finish()]).toEqual(expected);
  });

  it('reads copies, and a writer whose size was wrong says so', () => {
    const data = new Uint8Array([1, 2, 3]);
    const copy = reader(data).fixed(3, 'all');
    data[0] = 9;
    expect([...copy]).toEqual([1, 2, 3]);
    expect(() => new BinaryWriter(3).u16(1).finish()).toThrow('BinaryWriter: wrote 2 of 3 bytes');
    expect(() => new BinaryWriter(1).u16(1)).toThrow(RangeError);
  });
});
