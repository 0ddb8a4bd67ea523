/**
 * One error type for the relay, with a stable `code` that the gateway's exception filter sends to
 * clients as `{ status: 'error', code, message }`. Messages come from relay.messages.ts: they say
 * what was expected and how to fix it, never an envelope, a key, a nonce or a database row.
 */

/** Every way the relay refuses a request or a configuration. Add codes at the end; never reuse one. */
export enum RelayErrorCode {
  /** The module's options are invalid: start-up stops. */
  InvalidOptions = 'INVALID_OPTIONS',
  /** A request argument breaks a limit or a format (size, count, length). */
  InvalidInput = 'INVALID_INPUT',
  /** The recipient's mailbox holds as many messages as its quota allows. */
  QuotaExceeded = 'QUOTA_EXCEEDED',
  /** Too many requests of one kind from one identity or one network address. */
  RateLimited = 'RATE_LIMITED',
  /** A prekey upload or bundle is refused (missing signed prekeys, identity key changed, too many). */
  BadPrekey = 'BAD_PREKEY',
  /** The database failed; details go to the server log only (without parameters). */
  Database = 'DATABASE',
}

export class RelayError extends Error {
  override readonly name = 'RelayError';

  constructor(
    readonly code: RelayErrorCode,
    message: string,
    /** For RateLimited: how long the client should wait before retrying. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** True when `err` is a RelayError, and when a code is given, one with that code. */
  static is(err: unknown, code?: RelayErrorCode): err is RelayError {
    return err instanceof RelayError && (code === undefined || err.code === code);
  }
}
