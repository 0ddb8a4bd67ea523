/**
 * What MessengerClient emits: the event map and the objects its events carry.
 */
import type { AddressString, MessageIdString } from '@usm/protocol';
import type { ConnectionStatus } from './connection.js';
import type { ClientError } from './errors.js';

interface MessageBase {
  /** The sender's address, authenticated by the session (and stamped by the relay). */
  readonly from: AddressString;
  /** The sender's random message id: dedup by it if your handler must be idempotent. */
  readonly id: MessageIdString;
  /** The sender's per-conversation counter. */
  readonly sequence: number;
  /** The sender's clock when it sent, ms since the epoch (a claim, for display). */
  readonly sentAt: number;
  /** When this device decrypted it, ms since the epoch. */
  readonly receivedAt: number;
  /** True when it arrived after its gap had been given up (place it by `sentAt`). */
  readonly late: boolean;
  /** Sequence numbers given up just before this one (0 when none): "messages missing". */
  readonly skippedBefore: number;
}

export type IncomingMessage =
  | (MessageBase & { readonly kind: 'text'; readonly text: string })
  | (MessageBase & { readonly kind: 'bytes'; readonly bytes: Uint8Array });

/**
 * A message of a kind this version does not know, from a peer on a newer version: show "this
 * message needs a newer version of the app". It takes its place in the conversation's order
 * like any message (it is no gap); its content is not kept, and no receipt is sent for it.
 */
export type UnsupportedMessage = MessageBase & {
  /** The payload kind the peer sent (a number this version has no name for). */
  readonly kind: number;
};

export interface DeliveryReceipt {
  /** The peer that received and stored the message. */
  readonly to: AddressString;
  /** The id `send` resolved with. */
  readonly id: MessageIdString;
}

export interface MessengerClientEvents {
  message: (message: IncomingMessage) => void | Promise<void>;
  delivered: (receipt: DeliveryReceipt) => void | Promise<void>;
  /** In order with `message` (it goes out once a `message` listener exists, like messages). */
  unsupported: (message: UnsupportedMessage) => void | Promise<void>;
  connection: (status: ConnectionStatus) => void;
  error: (error: ClientError) => void;
}
