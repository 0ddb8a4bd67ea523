/** The client <-> relay handshake (docs/protocol.md, "Client <-> relay handshake"). */
export interface RelayHandshakeOptions {
  /**
   * How far a client's Init timestamp may be from the relay's clock, either way.
   * @default DEFAULT_SKEW_WINDOW_MS of @usm/protocol: 300_000 (5 minutes)
   */
  skewWindowMs?: number;
  /**
   * How long a handshake nonce is remembered at least (always until its Init leaves the skew window).
   * @default DEFAULT_REPLAY_RETENTION_MS of @usm/protocol: 600_000 (10 minutes)
   */
  replayRetentionMs?: number;
  /**
   * An unauthenticated socket is closed after this: the handshake must complete in time.
   * @default 10_000
   */
  timeoutMs?: number;
}
