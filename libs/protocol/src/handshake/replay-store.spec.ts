import { ProtocolErrorCode } from '../errors.js';
import { FakeClock, T0, expectProtocolError, world } from './handshake-kit.test.js';
import { InMemoryReplayStore } from './replay-store.js';

const key = (n: number) => new Uint8Array(32).fill(n);

beforeAll(() => world());

describe('InMemoryReplayStore', () => {
  it('remembers a key until it expires', async () => {
    const clock = new FakeClock();
    const store = new InMemoryReplayStore({ clock });
    await expect(store.remember(key(1), T0 + 1000)).resolves.toBe(true);
    await expect(store.remember(key(1), T0 + 1000)).resolves.toBe(false);
    await expect(store.remember(key(2), T0 + 1000)).resolves.toBe(true);
    clock.advance(999);
    await expect(store.remember(key(1), T0 + 5000)).resolves.toBe(false);
    clock.advance(1); // now === expiresAt: expired
    await expect(store.remember(key(1), T0 + 5000)).resolves.toBe(true);
    await expect(store.remember(key(1), T0 + 5000)).resolves.toBe(false);
  });

  it('of two concurrent calls with the same key, exactly one is new', async () => {
    const store = new InMemoryReplayStore({ clock: new FakeClock() });
    const results = await Promise.all([store.remember(key(7), T0 + 1), store.remember(key(7), T0 + 1)]);
    expect(results.sort()).toEqual([false, true]);
  });

  it('is bounded: when full of unexpired keys it refuses with TOO_LARGE instead of forgetting one', async () => {
    const clock = new FakeClock();
    const store = new InMemoryReplayStore({ clock, maxEntries: 3 });
    for (const n of [1, 2, 3]) await store.remember(key(n), T0 + 1000);
    const err = await expectProtocolError(
      () => store.remember(key(4), T0 + 1000),
      ProtocolErrorCode.TooLarge,
    );
    expect(err.message).toContain('raise maxEntries');
    await expect(store.remember(key(1), T0 + 1000)).resolves.toBe(false); // still remembered
    expect(store.size).toBe(3);
  });

  it('drops expired keys to make room, also when expiries are out of insertion order', async () => {
    const clock = new FakeClock();
    const store = new InMemoryReplayStore({ clock, maxEntries: 3 });
    await store.remember(key(1), T0 + 10_000); // long-lived, first in insertion order
    await store.remember(key(2), T0 + 100);
    await store.remember(key(3), T0 + 100);
    clock.advance(100);
    await expect(store.remember(key(4), T0 + 10_000)).resolves.toBe(true);
    expect(store.size).toBe(2);
    await expect(store.remember(key(1), T0 + 10_000)).resolves.toBe(false);
    await expect(store.remember(key(2), T0 + 10_000)).resolves.toBe(true);
  });

  it('drops expired keys from the oldest as new ones arrive', async () => {
    const clock = new FakeClock();
    const store = new InMemoryReplayStore({ clock });
    for (let n = 0; n < 50; n++) await store.remember(key(n), T0 + 1000);
    clock.advance(1000);
    await store.remember(key(99), T0 + 5000);
    expect(store.size).toBe(1);
  });

  it('refuses a bad maxEntries', () => {
    expect(() => new InMemoryReplayStore({ maxEntries: 0 })).toThrow('maxEntries must be a positive integer');
  });
});
