/**
 * Limits of session setup and of the per-peer session. Each bounds what a peer (or a corrupted
 * pickle) can make a client store or compute. Wire-level limits shared with the relay
 * (MAX_PREKEY_RECORD_BYTES, MAX_ENVELOPE_CIPHERTEXT_BYTES, MAX_PREKEY_ID) live in ../limits.ts.
 */

/**
 * Signed prekeys (and last-resort KEM prekeys) kept by their owner: the current one and the two
 * before it. An initial message can be in flight (or queued at the relay) for as long as mail
 * lives, so a rotated-out prekey must stay usable for a while (X3DH §2.2/§4.6: "Bob may keep the
 * private key corresponding to the previous signed prekey around for some period of time");
 * rotating weekly, three cover the relay's 30-day mail TTL closely enough, and dropping the oldest
 * is what bounds the exposure of a stolen signed prekey.
 */
export const MAX_SIGNED_PREKEYS_KEPT = 3;

/**
 * One-time X25519 prekeys an owner holds unused. Ten batches of MAX_ONE_TIME_PREKEYS_PER_PUBLISH:
 * refills never run into it, and a pickle stays under 40 KiB of them.
 */
export const MAX_STORED_ONE_TIME_PREKEYS = 1000;

/**
 * One-time KEM prekeys an owner holds unused (1,288 bytes each when published, 32 in a pickle).
 * Fewer than the X25519 ones: the last-resort KEM prekey always backs them up.
 */
export const MAX_STORED_ONE_TIME_KEM_PREKEYS = 200;

/** How many one-time prekeys one `generate*` call makes: one relay publish batch. */
export const MAX_ONE_TIME_PREKEYS_PER_BATCH = 100;

/**
 * Session states a `Session` keeps besides the current one (libsignal keeps 40 "previous
 * states"). An archived state still decrypts late mail sent before a reset and resolves the race
 * in which both peers start a session at once; four covers both while keeping a pickle small.
 */
export const MAX_ARCHIVED_SESSION_STATES = 4;

/**
 * Setup ids of replaced sessions a `Session` remembers, so a replayed old initial message cannot
 * reset the conversation to a stale state (PQXDH §4.2). 32 bytes each; 64 resets back is beyond
 * any real conversation's history of resets.
 */
export const MAX_REMEMBERED_SETUP_IDS = 64;

/**
 * The largest pickled Double Ratchet a session pickle may claim: 2,000 skipped keys of 36 bytes
 * plus five chains and fixed fields stay under 80 KiB; 128 KiB leaves room for growth.
 */
export const MAX_RATCHET_PICKLE_BYTES = 128 * 1024;
