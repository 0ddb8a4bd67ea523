/**
 * The client <-> relay handshake (SIGMA-I as in TLS 1.3): message codecs, the two state
 * machines, the replay store interface and its in-memory implementation.
 */
export { type Clock, systemClock } from './clock.js';
export { HandshakeClient, type HandshakeClientOptions } from './handshake-client.js';
export { HandshakeClockSkewError } from './handshake-errors.js';
export {
  COMPLETE_BYTES,
  INIT_BYTES,
  RESPONSE_BYTES,
  decodeHandshakeComplete,
  decodeHandshakeInit,
  decodeHandshakeResponse,
  encodeHandshakeComplete,
  encodeHandshakeInit,
  encodeHandshakeResponse,
  type HandshakeComplete,
  type HandshakeInit,
  type HandshakeResponse,
} from './handshake-messages.js';
export {
  TrafficKeys,
  type ClientHandshakeResult,
  type HandshakeResult,
  type RelayHandshakeResult,
} from './handshake-result.js';
export {
  DEFAULT_REPLAY_RETENTION_MS,
  DEFAULT_REPLAY_STORE_MAX_ENTRIES,
  DEFAULT_SKEW_WINDOW_MS,
  HANDSHAKE_VERSION,
  HandshakeMessageType,
} from './limits.js';
export { RelayHandshake, type RelayHandshakeOptions } from './relay-handshake.js';
export {
  InMemoryReplayStore,
  type HandshakeReplayStore,
  type InMemoryReplayStoreOptions,
} from './replay-store.js';
