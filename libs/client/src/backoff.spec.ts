import { describe, expect, it } from '@jest/globals';
import { BACKOFF_DEFAULTS, Backoff, backoffCeiling, backoffDelay } from './backoff.js';
import { ClientError, ClientErrorCode } from './errors.js';

const ALMOST_ONE = 1 - Number.EPSILON;

describe('backoffCeiling', () => {
  it('grows by the factor from the base up to the cap (defaults 500 ms, x2, 30 s)', () => {
    expect(BACKOFF_DEFAULTS).toMatchObject({ baseMs: 500, factor: 2, capMs: 30_000 });
    const ceilings = Array.from({ length: 9 }, (_, n) => backoffCeiling(n));
    expect(ceilings).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('stays at the cap for huge attempt numbers (no overflow to Infinity or NaN)', () => {
    expect(backoffCeiling(5000)).toBe(30_000);
    expect(backoffCeiling(5000, { baseMs: 1, factor: 10, capMs: 7 })).toBe(7);
  });

  it('refuses a negative or fractional attempt and bad options with INVALID_ARGUMENT', () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return ClientError.is(err) ? err.code : 'not a ClientError';
      }
      return 'no error';
    };
    expect(codeOf(() => backoffCeiling(-1))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffCeiling(1.5))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffCeiling(0, { baseMs: 0 }))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffCeiling(0, { factor: 0.5 }))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffCeiling(0, { baseMs: 100, capMs: 50 }))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffDelay(0, { random: () => 1 }))).toBe(ClientErrorCode.InvalidArgument);
    expect(codeOf(() => backoffDelay(0, { random: () => Number.NaN }))).toBe(ClientErrorCode.InvalidArgument);
  });
});

describe('backoffDelay (full jitter)', () => {
  it('is 0 when the random source gives 0, and just under the ceiling when it gives almost 1', () => {
    for (let n = 0; n < 12; n++) {
      expect(backoffDelay(n, { random: () => 0 })).toBe(0);
      const top = backoffDelay(n, { random: () => ALMOST_ONE });
      expect(top).toBe(backoffCeiling(n) - 1);
    }
  });

  it('scales the random number over the whole interval', () => {
    expect(backoffDelay(0, { random: () => 0.5 })).toBe(250);
    expect(backoffDelay(3, { random: () => 0.25 })).toBe(1000);
    expect(backoffDelay(20, { random: () => 0.5 })).toBe(15_000);
  });

  it('always lies in [0, ceiling) with the default random source', () => {
    for (let n = 0; n < 40; n++) {
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(n);
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(backoffCeiling(n));
      }
    }
  });
});

describe('Backoff', () => {
  it('counts attempts, grows the ceiling, and starts over after reset()', () => {
    const b = new Backoff({ baseMs: 100, factor: 3, capMs: 1000, random: () => ALMOST_ONE });
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([99, 299, 899, 999]);
    expect(b.attempt).toBe(4);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(99);
  });

  it('validates its options when constructed', () => {
    expect(() => new Backoff({ capMs: -1 })).toThrow('backoff: capMs must be >= baseMs, got -1');
  });
});
