/**
 * The client <-> relay handshake (SIGMA-I as in TLS 1.3), as its users need it: the two state
 * machines, the replay store interface and its in-memory implementation. The message codecs stay
 * inside.
 */
export { type Clock, systemClock } from './clock.js';
export { HandshakeClient, type HandshakeClientOptions } from './handshake-client.js';
export { HandshakeClockSkewError } from './handshake-errors.js';
export {
  type TrafficKeys,
  type ClientHandshakeResult,
  type HandshakeResult,
  type RelayHandshakeResult,
} from './handshake-result.js';
export { DEFAULT_REPLAY_RETENTION_MS, DEFAULT_SKEW_WINDOW_MS } from './limits.js';
export { RelayHandshake, type RelayHandshakeOptions } from './relay-handshake.js';
export {
  InMemoryReplayStore,
  type HandshakeReplayStore,
  type InMemoryReplayStoreOptions,
} from './replay-store.js';
