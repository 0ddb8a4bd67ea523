/**
 * One error type for the whole crypto core, with a stable `code` callers can branch on.
 * Messages say what was expected and what arrived (lengths, versions, indices), never a
 * key, a plaintext or any secret byte. Modelled on libsignal's `LibSignalErrorBase`.
 */

/** Every way the crypto core refuses an input. */
export enum CryptoErrorCode {
  /** `ready()` was not awaited before a synchronous primitive was used. */
  NotReady = 'NOT_READY',
  /** A byte input has the wrong type or length, or an encoding is malformed. */
  MalformedInput = 'MALFORMED_INPUT',
  /** A public or private key is not acceptable (wrong type tag, low order, all-zero DH output). */
  InvalidKey = 'INVALID_KEY',
  /** An Ed25519 signature did not verify. */
  BadSignature = 'BAD_SIGNATURE',
  /** An AEAD tag (AES-256-GCM) did not verify: the ciphertext, header or associated data changed. */
  BadMac = 'BAD_MAC',
  /** No known header key opens the message header (not for this session, or corrupted). */
  UnknownHeaderKey = 'UNKNOWN_HEADER_KEY',
  /** The message's key was already used: a replay or a duplicate delivery. */
  DuplicateMessage = 'DUPLICATE_MESSAGE',
  /** The message is further ahead in its chain than MAX_SKIP allows. */
  JumpTooLarge = 'JUMP_TOO_LARGE',
  /** A pickle has an unknown version, a bad layout, or could not be decrypted. */
  BadPickle = 'BAD_PICKLE',
  /** The session cannot do this yet (a responder sends only after the first message arrived). */
  SessionNotReady = 'SESSION_NOT_READY',
  /** A limit of the protocol was reached (e.g. a chain's message counter). */
  LimitExceeded = 'LIMIT_EXCEEDED',
}

export class CryptoError extends Error {
  override readonly name = 'CryptoError';

  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** True when `err` is a CryptoError, and when a code is given, one with that code. */
  static is(err: unknown, code?: CryptoErrorCode): err is CryptoError {
    return err instanceof CryptoError && (code === undefined || err.code === code);
  }
}
