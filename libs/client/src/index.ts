export { ClientError, ClientErrorCode, type ClientErrorOptions } from './errors.js';
export { BACKOFF_DEFAULTS, Backoff, backoffCeiling, backoffDelay, type BackoffOptions } from './backoff.js';
export {
  MAX_KEY_LENGTH,
  MAX_VALUE_BYTES,
  type ClientStore,
  type StoreEntry,
  type WriteBatch,
} from './storage/client-store.js';
export { MemoryStore } from './storage/memory-store.js';
export { IndexedDbStore, type IndexedDbStoreOptions } from './storage/indexeddb-store.js';
export {
  MAX_RECIPIENT_LENGTH,
  OUTBOX_DEFAULTS,
  Outbox,
  type NewOutboxEntry,
  type OutboxEntry,
  type OutboxOptions,
} from './outbox/outbox.js';
// The protocol's own, re-exported: the client keeps no copy of them.
export { MESSAGE_ID_BYTES, systemClock, type Clock } from '@usm/protocol';
export {
  MessengerClient,
  type DeliveryReceipt,
  type IncomingMessage,
  type MessengerClientEvents,
  type MessengerClientHooks,
  type MessengerClientOptions,
  type UnsupportedMessage,
} from './messenger-client.js';
export {
  MAX_BINARY_ATTACHMENTS,
  type ConnectionState,
  type ConnectionStatus,
  type SocketFactory,
} from './connection.js';
