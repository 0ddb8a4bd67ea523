/**
 * One error type for the protocol layer, with a stable `code` that callers (the relay's
 * exception filter, the client) branch on and that crosses the wire in error replies.
 * Messages say what was expected and what arrived (lengths, versions, field names), never a
 * key, a nonce, a plaintext or any payload byte. Modelled on libsignal's `LibSignalErrorBase`.
 */

/** Every way the protocol layer refuses an input. Add codes at the end; never reuse one. */
export enum ProtocolErrorCode {
  /** Bytes that do not decode: wrong length, bad field, trailing bytes. */
  Malformed = 'MALFORMED',
  /** A version byte this implementation does not speak. */
  UnsupportedVersion = 'UNSUPPORTED_VERSION',
  /** A size limit (envelope, field, count) was exceeded. */
  TooLarge = 'TOO_LARGE',
  /** A signature over a handshake transcript or a prekey did not verify. */
  BadSignature = 'BAD_SIGNATURE',
  /** A key-confirmation MAC did not verify. */
  BadMac = 'BAD_MAC',
  /** The peer's identity is not the one pinned or expected. */
  IdentityMismatch = 'IDENTITY_MISMATCH',
  /** A timestamp outside the accepted clock-skew window. */
  ClockSkew = 'CLOCK_SKEW',
  /** A nonce or message seen before. */
  Replay = 'REPLAY',
  /** A message out of the expected order (handshake step, sequence). */
  UnexpectedMessage = 'UNEXPECTED_MESSAGE',
  /** A key that is not acceptable (low order, wrong type). */
  InvalidKey = 'INVALID_KEY',
  /** A prekey bundle is missing, stale, or a one-time prekey was already used. */
  BadPrekey = 'BAD_PREKEY',
  /** A socket event that needs an authenticated socket (handshake completed) arrived before it. */
  Unauthenticated = 'UNAUTHENTICATED',
  /** A rate limit was hit; the error reply carries `retryAfterMs`. */
  RateLimited = 'RATE_LIMITED',
  /** The relay failed on its side (store unavailable, a bug); the details stay in its log. */
  Internal = 'INTERNAL',
  /**
   * No session state with this peer opens the message (no session at all, or one that is lost
   * or corrupted): the receiver should start a fresh session with the sender (session/).
   */
  NoSession = 'NO_SESSION',
  /** A pickled session or prekey store does not load: corrupted, wrong key, or unknown version. */
  BadPickle = 'BAD_PICKLE',
  /** The recipient's mailbox holds as many undelivered messages as the relay allows; retry later. */
  QuotaExceeded = 'QUOTA_EXCEEDED',
  /**
   * The relay cannot do it now (its database is down, or it is shutting down); nothing was
   * stored or deleted. Retry, on this or another node, after `retryAfterMs` when given.
   */
  Unavailable = 'UNAVAILABLE',
}

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';

  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** True when `err` is a ProtocolError, and when a code is given, one with that code. */
  static is(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
    return err instanceof ProtocolError && (code === undefined || err.code === code);
  }
}
