/**
 * Anti-replay memory of the relay: every accepted Init's nonce is remembered until its
 * timestamp can no longer pass the skew check, so a replayed Init within the window is refused
 * (REPLAY) on any node that shares the store. The relay backs the interface with PostgreSQL
 * (`INSERT ... ON CONFLICT DO NOTHING` on the key, rows deleted after `expiresAtMs`); this file
 * ships the in-memory implementation for one process and for tests.
 */
import { assertBytes, toHex } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { type Clock, systemClock } from './clock.js';
import { DEFAULT_REPLAY_STORE_MAX_ENTRIES } from './limits.js';

/**
 * Remembers handshake nonces, atomically across every relay node that shares it.
 *
 * The relay passes a 32-byte key derived from the client identity and the nonce
 * (SHA-256(REPLAY_KEY_LABEL | identity | nonce)), never the nonce itself.
 */
export interface HandshakeReplayStore {
  /**
   * Records `nonce` until `expiresAtMs`. Resolves true when it was not already recorded (or its
   * record had expired), false when it was: the handshake is a replay. Must be atomic: of two
   * concurrent calls with the same nonce, exactly one resolves true.
   */
  remember(nonce: Uint8Array, expiresAtMs: number): Promise<boolean>;
}

export interface InMemoryReplayStoreOptions {
  /** @default the system clock */
  clock?: Clock;
  /**
   * Unexpired entries held at most. When full, `remember` refuses with TOO_LARGE rather than
   * forget an unexpired nonce (which would let its replay through).
   * @default 100000 (DEFAULT_REPLAY_STORE_MAX_ENTRIES)
   */
  maxEntries?: number;
}

/**
 * A bounded in-memory HandshakeReplayStore for a single process (tests, a one-node relay).
 * Expired entries are dropped as new ones arrive.
 *
 * @example
 * const store = new InMemoryReplayStore({ maxEntries: 10_000 });
 * const relay = new RelayHandshake({ identity, replayStore: store });
 */
export class InMemoryReplayStore implements HandshakeReplayStore {
  /** hex(key) -> expiry, in insertion order. */
  readonly #entries = new Map<string, number>();
  readonly #clock: Clock;
  readonly #maxEntries: number;

  constructor(options: InMemoryReplayStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxEntries = options.maxEntries ?? DEFAULT_REPLAY_STORE_MAX_ENTRIES;
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new RangeError(
        `InMemoryReplayStore: maxEntries must be a positive integer, got ${this.#maxEntries}`,
      );
    }
  }

  /** Entries currently held (expired ones may linger until the next `remember`). */
  get size(): number {
    return this.#entries.size;
  }

  async remember(nonce: Uint8Array, expiresAtMs: number): Promise<boolean> {
    assertBytes(nonce, undefined, 'replay key');
    const now = this.#clock.now();
    this.#dropExpiredPrefix(now);
    const key = toHex(nonce);
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing > now) return false;
    if (existing !== undefined) this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      this.#dropAllExpired(now);
      if (this.#entries.size >= this.#maxEntries) {
        throw new ProtocolError(
          ProtocolErrorCode.TooLarge,
          `handshake replay store is full (${this.#maxEntries} unexpired nonces): retry later, or raise maxEntries`,
        );
      }
    }
    this.#entries.set(key, expiresAtMs);
    return true;
  }

  /** Drops expired entries from the oldest until the first unexpired one: O(1) amortised. */
  #dropExpiredPrefix(now: number): void {
    for (const [key, expiresAt] of this.#entries) {
      if (expiresAt > now) return;
      this.#entries.delete(key);
    }
  }

  /** Expiries are not always in insertion order: a full sweep before refusing for size. */
  #dropAllExpired(now: number): void {
    for (const [key, expiresAt] of this.#entries) if (expiresAt <= now) this.#entries.delete(key);
  }
}
