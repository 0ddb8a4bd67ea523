/**
 * Sizes and time limits of the client <-> relay handshake, each with its rationale.
 */

/** The wire version of all three handshake messages. A new layout or new labels bump it. */
export const HANDSHAKE_VERSION = 1;

/** Second byte of every handshake message: which of the three it is. */
export enum HandshakeMessageType {
  Init = 0x01,
  Response = 0x02,
  Complete = 0x03,
}

/** The client's random nonce: 256 bits, so two honest clients never pick the same one. */
export const HANDSHAKE_NONCE_BYTES = 32;

/** HMAC-SHA-256 output: the Finished MACs are never truncated (RFC 8446 §4.4.4 keeps Hash.length). */
export const HANDSHAKE_MAC_BYTES = 32;

/** Traffic keys are AES-256 keys. */
export const TRAFFIC_KEY_BYTES = 32;

/** The session id: 256 bits derived from the master secret, public. */
export const SESSION_ID_BYTES = 32;

const MINUTE_MS = 60_000;

/**
 * How far a client's timestamp may be from the relay's clock, either way. Five minutes is the
 * Kerberos default (RFC 4120 §1.6): wide enough for phones whose clocks drift, narrow enough that
 * the replay store only has to remember a few minutes of nonces.
 */
export const DEFAULT_SKEW_WINDOW_MS = 5 * MINUTE_MS;

/**
 * How long the relay remembers a nonce. An Init is acceptable while |timestamp - now| <= skew,
 * so its nonce must be remembered until timestamp + skew, which is at most now + 2 x skew:
 * twice the default window covers every Init that passed the skew check.
 */
export const DEFAULT_REPLAY_RETENTION_MS = 2 * DEFAULT_SKEW_WINDOW_MS;

/**
 * Entries the in-memory replay store holds before it refuses new handshakes (it never evicts an
 * unexpired nonce: that would let a replay through). 100,000 entries are about 10 MiB and,
 * with the default retention, 166 handshakes per second sustained on one process.
 */
export const DEFAULT_REPLAY_STORE_MAX_ENTRIES = 100_000;
