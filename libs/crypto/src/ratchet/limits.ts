/**
 * Limits of the Double Ratchet. Each bounds what a sender (honest or not) can make a receiver
 * compute or store. Orders of magnitude follow libsignal (rust/protocol/src/consts.rs:
 * MAX_FORWARD_JUMPS 25,000, MAX_MESSAGE_KEYS 2,000, MAX_RECEIVER_CHAINS 5) and vodozemac
 * (MAX_MESSAGE_GAP 2,000).
 */

/**
 * Signal spec §3.5 MAX_SKIP: how far ahead of the next expected message a header may point
 * within one chain. Bounds the HMAC work (and stored keys) one forged-but-authentic header can
 * cost; 1,000 covers any realistic burst lost in transit.
 */
export const MAX_SKIP = 1000;

/**
 * Skipped message keys kept across all chains. Past it the oldest are evicted first: a message
 * that late is the least likely to still arrive, and the bound keeps a pickle small.
 */
export const MAX_SKIPPED_KEYS = 2000;

/**
 * Receiving chains remembered (the current one and older ones whose skipped keys may still be
 * used, or whose header key lets a replay be named as such). Older chains are forgotten with
 * their skipped keys; five DH turns back is far beyond normal reordering.
 */
export const MAX_RECEIVING_CHAINS = 5;

/** Message numbers are 32-bit on the wire; a chain stops before it would wrap. */
export const MAX_CHAIN_INDEX = 0xffff_ffff;
