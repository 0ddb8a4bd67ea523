import fc from 'fast-check';
import { ProtocolErrorCode } from '../errors.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { arbitraryBytes, checkDecoder, fuzz, mutated, newStats } from '../../test/fuzz.js';
import { MAX_PADDED_PLAINTEXT_BYTES, MAX_UNPADDED_PLAINTEXT_BYTES, PADDING_BUCKETS } from '../limits.js';
import { pad, paddedLength, unpad } from './padding.js';

describe('padding', () => {
  it('uses the documented buckets', () => {
    expect(PADDING_BUCKETS).toEqual([256, 1024, 4096, 16384, 61440]);
    expect(MAX_PADDED_PLAINTEXT_BYTES).toBe(61440);
  });

  it('pads to the smallest bucket that holds the content and the 0x80 marker', () => {
    const cases: [number, number][] = [
      [0, 256],
      [255, 256],
      [256, 1024],
      [1023, 1024],
      [1024, 4096],
      [16383, 16384],
      [16384, 61440],
      [MAX_UNPADDED_PLAINTEXT_BYTES, 61440],
    ];
    for (const [length, bucket] of cases) {
      expect(paddedLength(length)).toBe(bucket);
      const padded = pad(new Uint8Array(length).fill(0x80));
      expect(padded.length).toBe(bucket);
      expect(padded[length]).toBe(0x80);
      expect(padded.subarray(length + 1).every((b) => b === 0)).toBe(true);
      expect(unpad(padded).length).toBe(length);
    }
  });

  it('round-trips any content, including trailing 0x80 and zero bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1100 }),
        fc.constantFrom(Uint8Array.of(), Uint8Array.of(0x80), Uint8Array.of(0, 0), Uint8Array.of(0x80, 0)),
        (body, tail) => {
          const content = Uint8Array.of(...body, ...tail);
          expect(unpad(pad(content))).toEqual(content);
        },
      ),
    );
  });

  it('refuses content past the largest bucket', () => {
    expectProtocolError(
      () => pad(new Uint8Array(MAX_UNPADDED_PLAINTEXT_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
      'padding: 61440 bytes, the limit is 61439',
    );
  });

  it('unpads strictly', () => {
    expectProtocolError(
      () => unpad(new Uint8Array(255)),
      ProtocolErrorCode.Malformed,
      'padding: 255 bytes is not a bucket size (256, 1024, 4096, 16384, 61440)',
    );
    expectProtocolError(
      () => unpad(new Uint8Array(256)),
      ProtocolErrorCode.Malformed,
      'padding: no 0x80 marker before the zeros',
    );
    const wrongMarker = new Uint8Array(256);
    wrongMarker[10] = 0x81;
    expectProtocolError(
      () => unpad(wrongMarker),
      ProtocolErrorCode.Malformed,
      'padding: no 0x80 marker before the zeros',
    );
    const oversized = new Uint8Array(1024);
    oversized[10] = 0x80;
    expectProtocolError(
      () => unpad(oversized),
      ProtocolErrorCode.Malformed,
      'padding: 10 bytes of content belong in a 256-byte bucket, got 1024',
    );
    expectProtocolError(
      () => unpad(new Uint8Array(MAX_PADDED_PLAINTEXT_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
      'padding: 61441 bytes, the limit is 61440',
    );
  });

  const allowed = [ProtocolErrorCode.Malformed, ProtocolErrorCode.TooLarge];

  it('fuzz: arbitrary bytes', () => {
    fuzz(arbitraryBytes(300), (b) => checkDecoder(unpad, pad, allowed, b));
  });

  it('fuzz: arbitrary bucket-sized bytes ending in a marker and zeros', () => {
    const stats = newStats();
    const input = fc
      .tuple(fc.uint8Array({ maxLength: 255 }), fc.integer({ min: 0, max: 255 }))
      .map(([head, marker]) => {
        const out = new Uint8Array(256);
        out.set(head);
        if (head.length < 256) out[head.length] = marker;
        return out;
      });
    fuzz(input, (b) => checkDecoder(unpad, pad, allowed, b, stats));
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });

  it('fuzz: mutated valid paddings', () => {
    const stats = newStats();
    fuzz(mutated(fc.uint8Array({ maxLength: 300 }).map(pad)), (b) =>
      checkDecoder(unpad, pad, allowed, b, stats),
    );
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
