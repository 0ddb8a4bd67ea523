/**
 * Receiving chains and their skipped message keys: Signal's Double Ratchet specification §3.2
 * (MKSKIPPED, SkipMessageKeys) and §4 (header encryption: skipped keys are indexed by the header
 * key of their chain, not by the sender's ratchet public key).
 *
 * A session remembers at most MAX_RECEIVING_CHAINS chains, oldest first; the newest one is the
 * current chain (it still has a chain key), older ones are closed and keep only their header key,
 * how far they went, and the keys of messages skipped in them. Remembering a closed chain's
 * header key lets a replay of one of its messages be named DUPLICATE_MESSAGE instead of being
 * mistaken for garbage.
 *
 * Skipped keys are bounded in total by MAX_SKIPPED_KEYS and evicted oldest first. Chains are
 * created in order and a chain's keys are all skipped before the next chain exists, so "oldest"
 * is simply the first key of the oldest chain that still has one.
 *
 * Values are immutable: an update returns new chain objects, so a decryption that fails
 * half-way leaves the session exactly as it was.
 */
import type { MessageKey } from '../encryption.js';
import type { X25519PublicKey } from '../keys.js';
import type { ReceivingChainKey } from './chain-key.js';
import { MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS } from './limits.js';

export interface ReceivingChain {
  /** HKr of this chain: opens the headers of its messages. */
  readonly headerKey: Uint8Array;
  /** The sender's ratchet public key for this chain (DHRr). */
  readonly ratchetKey: X25519PublicKey;
  /** CKr while the chain is current; undefined once a newer chain replaced it. */
  readonly chainKey: ReceivingChainKey | undefined;
  /** Nr: the next message number this chain expects (for a closed chain, where it stopped). */
  readonly nextIndex: number;
  /** Keys of skipped messages by message number, in the order they were skipped. */
  readonly skipped: ReadonlyMap<number, MessageKey>;
}

/** A copy of `chain` with `keys` added to its skipped keys. */
export function withSkipped(chain: ReceivingChain, keys: readonly MessageKey[]): ReceivingChain {
  if (keys.length === 0) return chain;
  const skipped = new Map(chain.skipped);
  for (const mk of keys) skipped.set(mk.index, mk);
  return { ...chain, skipped };
}

/** A copy of `chain` without the skipped key of message `n`. */
export function withoutSkipped(chain: ReceivingChain, n: number): ReceivingChain {
  const skipped = new Map(chain.skipped);
  skipped.delete(n);
  return { ...chain, skipped };
}

export function countSkipped(chains: readonly ReceivingChain[]): number {
  let total = 0;
  for (const chain of chains) total += chain.skipped.size;
  return total;
}

/**
 * Applies the limits to a list of chains (oldest first): forgets the oldest chains past
 * MAX_RECEIVING_CHAINS, then evicts the oldest skipped keys past MAX_SKIPPED_KEYS.
 * Returns the bounded list and the keys it dropped (for the caller to wipe once the new state
 * is committed: until then the old state may still hold them).
 */
export function enforceLimits(chains: readonly ReceivingChain[]): {
  chains: ReceivingChain[];
  evicted: MessageKey[];
} {
  const evicted: MessageKey[] = [];
  const kept = chains.slice();
  while (kept.length > MAX_RECEIVING_CHAINS) {
    const dropped = kept.shift()!;
    evicted.push(...dropped.skipped.values());
  }
  let excess = countSkipped(kept) - MAX_SKIPPED_KEYS;
  for (let i = 0; excess > 0 && i < kept.length; i++) {
    const chain = kept[i]!;
    if (chain.skipped.size === 0) continue;
    const skipped = new Map(chain.skipped);
    for (const [n, mk] of chain.skipped) {
      if (excess === 0) break;
      skipped.delete(n);
      evicted.push(mk);
      excess--;
    }
    kept[i] = { ...chain, skipped };
  }
  return { chains: kept, evicted };
}
