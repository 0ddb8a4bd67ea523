import { describe, expect, it } from '@jest/globals';
import { chunk } from './chunk.js';

describe('chunk', () => {
  it('splits by count, in order', () => {
    expect(chunk([1, 2, 3, 4, 5], { maxCount: 2 })).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], { maxCount: 2 })).toEqual([]);
  });

  it('splits by bytes too, and gives an item over the byte limit a chunk of its own', () => {
    const sizes = [40, 40, 30, 200, 10];
    expect(chunk(sizes, { maxCount: 10, maxBytes: 100, bytesOf: (n) => n })).toEqual([
      [40, 40],
      [30],
      [200],
      [10],
    ]);
    expect(chunk(sizes, { maxCount: 1, maxBytes: 1000, bytesOf: (n) => n })).toHaveLength(5);
  });

  it('refuses a count limit below 1', () => {
    expect(() => chunk([1], { maxCount: 0 })).toThrow(RangeError);
  });
});
