import type { RelayPushOptions } from '../push/push.options.js';

/**
 * Mail: how long it is kept, how much a mailbox holds, and how much one call may carry. The
 * per-call limits default to the protocol's limits of the same meaning (@usm/protocol's
 * limits.ts) and may only be lowered: a client never builds a request the relay refuses for size.
 */
export interface RelayMailOptions extends RelayPushOptions {
  /**
   * How long undelivered mail is kept, and the most a sender may ask for (Signal keeps 30 days).
   * @default 2_592_000_000 (30 days)
   */
  ttlMs?: number;
  /**
   * Undelivered messages one recipient may hold; more are refused with QUOTA_EXCEEDED.
   * @default 10_000
   */
  quotaPerRecipient?: number;
  /**
   * Largest envelope accepted, in bytes, at most MAX_ENVELOPE_BYTES (64 KiB of ciphertext plus
   * the 57-byte header).
   * @default MAX_ENVELOPE_BYTES: 65_593
   */
  maxEnvelopeBytes?: number;
  /**
   * Most envelopes in one `send` (one store call), at most MAX_ENVELOPES_PER_SEND.
   * @default MAX_ENVELOPES_PER_SEND: 50
   */
  maxEnvelopesPerSend?: number;
  /**
   * Most messages in one `fetch` page (the gateway's reply and the store's `fetch`), at most
   * MAX_FETCH_PAGE.
   * @default MAX_FETCH_PAGE: 50
   */
  maxFetchPage?: number;
  /**
   * Most message ids in one store `ack` call, at most MAX_ACKS_PER_CALL; the gateway splits an
   * `ack` event into calls of this many.
   * @default MAX_ACKS_PER_CALL: 500
   */
  maxAcksPerCall?: number;
  /**
   * Most store cursors in one cross-node `mail:available` notice batch, which a node reads back
   * in one store `read` (recipients and cursors each at most this). A relay limit, not a wire
   * one: notices travel between nodes only.
   * @default 100
   */
  maxNoticeCursors?: number;
  /**
   * Longest address (recipient or sender) accepted, in characters.
   * @default 256
   */
  maxAddressLength?: number;
  /**
   * @deprecated Use `maxEnvelopesPerSend`. Still accepted (an integer from 1 to 10,000) and read as
   * `maxEnvelopesPerSend`, lowered to MAX_ENVELOPES_PER_SEND, when that is not set.
   */
  maxBatch?: number;
  /**
   * @deprecated It set three limits at once; use `maxFetchPage`, `maxAcksPerCall` and
   * `maxNoticeCursors`. Still accepted (an integer from 1 to 10,000) and read as each of the three
   * that is not set, lowered to its cap.
   */
  maxPage?: number;
}

/** The deprecated names of `mail` options, replaced in the resolved options. */
export type DeprecatedMailOption = 'maxBatch' | 'maxPage';

/** `mail` with every default filled in and the deprecated names resolved. */
export type ResolvedMailOptions = Required<Omit<RelayMailOptions, DeprecatedMailOption>>;
