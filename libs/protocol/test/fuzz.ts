/**
 * Fuzzing kit for the protocol's decoders (fast-check 4). Two kinds of input reach every decoder:
 * arbitrary bytes, and valid encodings mutated the way a corrupting link or an attacker would
 * (bit flips, byte overwrites, truncation, extension, deletion, splicing in a slice of another
 * valid encoding). `checkDecoder` states the contract: a decoder returns a value that re-encodes
 * to exactly the input, or throws a ProtocolError with one of the allowed codes; any other
 * outcome (TypeError, RangeError, a different encoding) fails the run.
 */
import fc from 'fast-check';
import { ProtocolError, type ProtocolErrorCode } from '../src/errors.js';

/** Cases per fuzz property: the brief's floor. */
export const FUZZ_RUNS = 10_000;

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'extend'; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'splice'; readonly at: number; readonly from: number; readonly length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat(),
    from: fc.nat(),
    length: fc.integer({ min: 1, max: 64 }),
  }),
);

function apply(input: Uint8Array, m: Mutation, donor: Uint8Array): Uint8Array {
  const n = input.length;
  switch (m.kind) {
    case 'flip': {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n]! ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n] = m.value;
      return out;
    }
    case 'truncate':
      return input.slice(0, m.at % (n + 1));
    case 'extend':
      return concat(input, m.bytes);
    case 'delete': {
      const at = m.at % (n + 1);
      return concat(input.subarray(0, at), input.subarray(at + m.length));
    }
    case 'splice': {
      const at = m.at % (n + 1);
      const from = donor.length === 0 ? 0 : m.from % donor.length;
      return concat(input.subarray(0, at), donor.subarray(from, from + m.length), input.subarray(at));
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Valid encodings with 1 to 4 mutations applied (a second valid encoding donates splices). */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, valid, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([input, donor, ms]) => ms.reduce((bytes, m) => apply(bytes, m, donor), input));
}

/** Arbitrary bytes, mostly short, sometimes as long as `maxLength`. */
export function arbitraryBytes(maxLength = 256): fc.Arbitrary<Uint8Array> {
  return fc.uint8Array({ maxLength });
}

/** What a fuzz run observed: how many inputs decoded and which codes were thrown. */
export interface FuzzStats {
  decoded: number;
  codes: Map<string, number>;
}

/**
 * The decoder contract, for one input. Throws (failing the property) when the decoder throws
 * anything but a ProtocolError with an allowed code, or returns a value that does not re-encode
 * to exactly `bytes`.
 */
export function checkDecoder<T>(
  decode: (bytes: Uint8Array) => T,
  encode: (value: T) => Uint8Array,
  allowed: readonly ProtocolErrorCode[],
  bytes: Uint8Array,
  stats?: FuzzStats,
): void {
  let value: T;
  try {
    value = decode(bytes);
  } catch (err) {
    if (!ProtocolError.is(err) || !allowed.includes(err.code)) {
      throw new Error(`decoder threw something other than an allowed ProtocolError: ${String(err)}`, {
        cause: err,
      });
    }
    stats?.codes.set(err.code, (stats.codes.get(err.code) ?? 0) + 1);
    return;
  }
  const again = encode(value);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
    throw new Error('decoded value does not re-encode to the same bytes');
  }
  if (stats) stats.decoded++;
}

export function newStats(): FuzzStats {
  return { decoded: 0, codes: new Map() };
}

/** Runs a property FUZZ_RUNS times. */
export function fuzz<T>(arb: fc.Arbitrary<T>, check: (value: T) => void): void {
  fc.assert(
    fc.property(arb, (v) => {
      check(v);
    }),
    { numRuns: FUZZ_RUNS },
  );
}

/**
 * Records the largest `Uint8Array.prototype.slice` copy made while `run` executes: decoders copy
 * fields out with `slice` (binary-reader.ts), so this bounds what they allocate for fields.
 */
export function largestSlice(run: () => void): number {
  const original = Uint8Array.prototype.slice;
  let largest = 0;
  Uint8Array.prototype.slice = function (this: Uint8Array, start?: number, end?: number) {
    const out = original.call(this, start, end);
    largest = Math.max(largest, out.length);
    return out;
  };
  try {
    run();
  } finally {
    Uint8Array.prototype.slice = original;
  }
  return largest;
}
