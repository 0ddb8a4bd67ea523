/**
 * One error type for the client library, with a stable `code` an application branches on.
 * Messages say what went wrong and what to do about it; they never hold a key, a passphrase, a
 * plaintext, a payload byte, or a storage key name (key names may carry peer addresses).
 * The underlying platform error, when there is one, is kept as `cause` for diagnosis.
 * Modelled on libsignal's `LibSignalErrorBase` (one class, a code enum, a static `is`).
 */

/** Every way the client library fails. Add codes at the end; never reuse one. */
export enum ClientErrorCode {
  /** The outbox holds its maximum number of messages; nothing was queued. Retry after some are delivered. */
  QueueFull = 'QUEUE_FULL',
  /** The storage backend failed (I/O error, quota, closed database); the operation did not happen. */
  StorageFailed = 'STORAGE_FAILED',
  /** The passphrase does not open the encrypted store (or the store's header was altered). */
  BadPassphrase = 'BAD_PASSPHRASE',
  /** A stored record is damaged or was tampered with; the store refuses to load rather than guess. */
  CorruptStore = 'CORRUPT_STORE',
  /** A queued message reached its expiry before the relay stored it; it was not sent. */
  Expired = 'EXPIRED',
  /** The operation needs a connection to the relay and there is none. */
  NotConnected = 'NOT_CONNECTED',
  /** This device's clock differs too much from the relay's for the handshake to be accepted. */
  ClockSkew = 'CLOCK_SKEW',
  /** The relay refused because of a rate limit; `retryAfterMs` says when to try again when known. */
  RateLimited = 'RATE_LIMITED',
  /** The relay replied with an error that is not one of the cases above. */
  RelayError = 'RELAY_ERROR',
  /** An argument the application passed is not acceptable (type, length, range). */
  InvalidArgument = 'INVALID_ARGUMENT',
  /** The store (or the object using it) was closed; open it again to continue. */
  StoreClosed = 'STORE_CLOSED',
  /** Another open store in this process already uses the same directory or database. */
  StoreInUse = 'STORE_IN_USE',
  /** The relay did not prove the pinned identity (or the handshake failed): check the relay key you pinned. */
  HandshakeFailed = 'HANDSHAKE_FAILED',
  /** A message from a peer could not be decrypted or was not sent by the session's peer; it was dropped. */
  DecryptFailed = 'DECRYPT_FAILED',
  /** The relay sent a reply or push that breaks the protocol (wrong shape, wrong recipient); it was ignored. */
  ProtocolViolation = 'PROTOCOL_VIOLATION',
  /** An application event handler threw; the event counts as delivered. */
  HandlerFailed = 'HANDLER_FAILED',
  /**
   * A message from a peer does not decrypt yet (it is ahead of mail still to come, or no held
   * key opens it); it was not acked, so the relay keeps it, and it is tried again as more mail
   * from that peer arrives. Reported once per message per run. Not a loss.
   */
  DecryptPending = 'DECRYPT_PENDING',
}

export interface ClientErrorOptions {
  /** The platform error underneath (an fs error, a DOMException). Never a secret. */
  cause?: unknown;
  /** For RATE_LIMITED: how long to wait before trying again, in milliseconds. */
  retryAfterMs?: number;
  /** For CLOCK_SKEW: the relay's clock, ms since the Unix epoch, when the relay reported it. */
  relayTimeMs?: number;
  /** The peer address the error concerns (public: the relay knows it too). */
  peer?: string;
  /** The message id the error concerns (public: the relay knows it too). */
  messageId?: string;
}

export class ClientError extends Error {
  override readonly name = 'ClientError';
  /** For RATE_LIMITED: how long to wait before trying again, in milliseconds, when the relay said. */
  readonly retryAfterMs: number | undefined;
  /** For CLOCK_SKEW: the relay's clock (ms since the epoch) when the relay reported it. */
  readonly relayTimeMs: number | undefined;
  /** The peer address the error concerns, when there is one. */
  readonly peer: string | undefined;
  /** The message id the error concerns, when there is one. */
  readonly messageId: string | undefined;

  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options: ClientErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
    this.relayTimeMs = options.relayTimeMs;
    this.peer = options.peer;
    this.messageId = options.messageId;
  }

  /** True when `err` is a ClientError, and when a code is given, one with that code. */
  static is(err: unknown, code?: ClientErrorCode): err is ClientError {
    return err instanceof ClientError && (code === undefined || err.code === code);
  }
}
