/**
 * @usm/relay: the Ultra-Secure Messenger relay as a NestJS module.
 *
 * The relay stores and forwards ciphertext it cannot read. Import `MessengerRelayModule.forRoot`
 * or `forRootAsync`; inject the parts by their tokens (`@InjectMessageStore()`, ...).
 */
export { MessengerRelayModule } from './relay.module.js';
export { type RelayModuleExtras } from './relay.module-definition.js';
export {
  RELAY_DEFAULTS,
  resolveRelayOptions,
  type RelayModuleOptions,
  type ResolvedRelayOptions,
} from './relay.options.js';
export type {
  RelayDatabaseDataSourceOptions,
  RelayDatabaseOptions,
  RelayDatabaseUrlOptions,
  ResolvedRelayDatabaseOptions,
} from './database/database.options.js';
export type { RelayHandshakeOptions } from './handshake/handshake.options.js';
export type { RelaySocketOptions } from './socket/socket.options.js';
export type { RelayMailOptions, ResolvedMailOptions } from './mail/mail.options.js';
export type { RelayPushOptions } from './push/push.options.js';
export type { RelayCleanupOptions } from './cleanup/cleanup.options.js';
export type { RelayPrekeyOptions } from './prekeys/prekeys.options.js';
export {
  RATE_LIMIT_BUCKETS,
  type RateLimitBucket,
  type RateLimitBucketOptions,
  type RateLimitRule,
  type RelayRateLimitOptions,
  type ResolvedRateLimitOptions,
} from './rate-limit/rate-limit.options.js';
export type { RelayMetricsOptions } from './metrics/metrics.options.js';
export type { RelayHealthOptions } from './health/health.options.js';
export {
  MESSAGE_ID_BYTES,
  RELAY_CLEANUP_JOB,
  RELAY_CONNECTION_NAME,
  RELAY_DATA_SOURCE,
  RELAY_MIGRATIONS_TABLE,
  RELAY_OPTIONS,
} from './relay.constants.js';
export { RELAY_MESSAGES } from './relay.messages.js';
export { RelayError, RelayErrorCode } from './relay.errors.js';
export { InjectRelayClock, RelayClock, systemClock } from './relay-clock.js';
export {
  RelayDatabase,
  RelayDatabaseError,
  openRelayDataSource,
  relayDataSourceOptions,
  runRelayMigrations,
  type Sql,
  type SqlResult,
} from './database/relay-database.js';
export { RELAY_MIGRATIONS } from './migrations/index.js';
export {
  InjectMessageStore,
  MessageStore,
  type AddressedMessage,
  type FetchPage,
  type OutgoingEnvelope,
  type StoreResult,
  type StoredMessage,
} from './mail/message-store.interface.js';
export { PostgresMessageStore } from './mail/message-store.service.js';
export { MAX_STORE_CURSOR, isStoreCursor } from './mail/store-cursor.js';
export { RelayCleanupService, type CleanupReport } from './cleanup/cleanup.service.js';
export {
  PrekeyDirectoryService,
  PrekeySignatureVerifier,
  type ClaimResult,
  type OneTimePrekey,
  type PrekeyBundle,
  type PrekeyInventory,
  type PrekeyStock,
  type PrekeyUpload,
  type PublishResult,
  type SignedPrekey,
} from './prekeys/prekey-directory.service.js';
export {
  HandshakeReplayStore,
  InjectHandshakeReplayStore,
  PostgresReplayStore,
  REPLAY_NONCE_MAX_BYTES,
  REPLAY_NONCE_MIN_BYTES,
} from './handshake/replay-store.service.js';
export {
  RelayRateLimiter,
  rateLimitedError,
  type RateLimitDecision,
  type RateLimitDimension,
  type RateLimitSubject,
} from './rate-limit/rate-limit.service.js';
export {
  RELAY_RATE_LIMIT_BUCKET,
  RelayRateLimit,
  RelayRateLimitGuard,
  type RateLimitRequest,
} from './rate-limit/rate-limit.guard.js';
export { RelayMetrics, type MessageEvent } from './metrics/metrics.service.js';
export { RelayGateway, type RelayServer, type RelaySocket } from './relay.gateway.js';
export { RelayIoAdapter } from './relay-io.adapter.js';
export { RelayExceptionFilter, UNAVAILABLE_RETRY_AFTER_MS, toErrorReply } from './relay-exception.filter.js';
export { RelayHealthIndicator } from './health/relay-health.indicator.js';
export {
  RELAY_HTTP_DEFAULTS,
  createRelayHttpController,
  type RelayHttpOptions,
} from './health/relay-http.controller.js';
