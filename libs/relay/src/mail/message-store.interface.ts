/**
 * The expiring ciphertext store: the relay keeps each envelope until its recipient acks it or it
 * expires. A swappable part: `interface MessageStore` with the DI token of the same name;
 * `PostgresMessageStore` (message-store.service.ts) is the implementation the module provides.
 */
import { Inject } from '@nestjs/common';
import type { RelayErrorCode } from '../relay.errors.js';

/** One envelope to store, as the sender's request carries it. */
export interface OutgoingEnvelope {
  /** The recipient's address (string form). */
  recipient: string;
  /** 128-bit random message id chosen by the sender; the idempotency key with the recipient. */
  messageId: Uint8Array;
  /** The envelope bytes: ciphertext, opaque to the relay. */
  envelope: Uint8Array;
  /** Requested lifetime; capped at the relay's `mail.ttlMs` (also the default). */
  ttlMs?: number;
}

/** The outcome for one envelope of a store call, in request order. */
export type StoreResult =
  | {
      recipient: string;
      messageId: Uint8Array;
      status: 'stored';
      /** The stored message's position in its recipient's mailbox (as `fetch` reports it). */
      cursor: string;
      /** The relay's receive time (epoch ms), as `fetch` reports it in `createdAt`. */
      createdAt: number;
      expiresAt: number;
    }
  | { recipient: string; messageId: Uint8Array; status: 'duplicate' }
  | {
      recipient: string;
      messageId: Uint8Array;
      status: 'rejected';
      code: RelayErrorCode.QuotaExceeded;
      message: string;
    };

/** A message as its recipient fetches it. Times are epoch milliseconds. */
export interface StoredMessage {
  /** Position in the recipient's mailbox; pass the page's `cursor` to fetch the next page. */
  cursor: string;
  messageId: Uint8Array;
  sender: string;
  envelope: Uint8Array;
  createdAt: number;
  expiresAt: number;
}

export interface FetchPage {
  /** Oldest first. */
  messages: StoredMessage[];
  /** Cursor of the last message returned (or the one passed in when the page is empty). */
  cursor: string | null;
  /** More messages wait after this page. */
  hasMore: boolean;
}

/**
 * Stores, pages and deletes a recipient's undelivered ciphertext. Callers pass the authenticated
 * identity's address as `sender` / `recipient`: the store trusts it, the gateway guarantees it.
 */
export interface MessageStore {
  /** Stores envelopes from `sender`, idempotently; one result per envelope, in order. */
  store(sender: string, envelopes: readonly OutgoingEnvelope[]): Promise<StoreResult[]>;
  /** Up to `limit` unexpired messages of `recipient` after `afterCursor`, oldest first. */
  fetch(recipient: string, afterCursor?: string | null, limit?: number): Promise<FetchPage>;
  /** Deletes `recipient`'s messages with these ids; returns how many rows it deleted. */
  ack(recipient: string, messageIds: readonly Uint8Array[]): Promise<number>;
  /** Unexpired messages waiting for `recipient`. */
  pendingCount(recipient: string): Promise<number>;
  /**
   * The unexpired messages of these recipients still stored at these cursors (of `store`
   * results), in cursor order: what a node reads to push mail another node stored. Acked or
   * expired ones are simply absent.
   */
  read(recipients: readonly string[], cursors: readonly string[]): Promise<AddressedMessage[]>;
}

/** A stored message with its recipient, as `read` returns it. */
export interface AddressedMessage extends StoredMessage {
  recipient: string;
}

/** DI token of the MessageStore. */
export const MessageStore = Symbol('MessageStore');

/** Injects the relay's MessageStore. */
export const InjectMessageStore = (): ParameterDecorator => Inject(MessageStore);
