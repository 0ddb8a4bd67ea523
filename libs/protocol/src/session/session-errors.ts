/**
 * Every failure of session setup and of a session leaves as a ProtocolError: crypto-core
 * refusals are translated here, so the client branches on one code enum. The exact messages of
 * the refusals the protocol defines (a bad prekey, an initial message that does not
 * authenticate, a replay) are functions here, so the code and its tests share one text.
 */
import { CryptoError, CryptoErrorCode } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

const CODES: Partial<Record<CryptoErrorCode, ProtocolErrorCode>> = {
  [CryptoErrorCode.MalformedInput]: ProtocolErrorCode.Malformed,
  [CryptoErrorCode.InvalidKey]: ProtocolErrorCode.InvalidKey,
  [CryptoErrorCode.BadSignature]: ProtocolErrorCode.BadSignature,
  [CryptoErrorCode.BadMac]: ProtocolErrorCode.BadMac,
  [CryptoErrorCode.UnknownHeaderKey]: ProtocolErrorCode.NoSession,
  [CryptoErrorCode.DuplicateMessage]: ProtocolErrorCode.Replay,
  [CryptoErrorCode.JumpTooLarge]: ProtocolErrorCode.TooLarge,
  [CryptoErrorCode.LimitExceeded]: ProtocolErrorCode.TooLarge,
  [CryptoErrorCode.BadPickle]: ProtocolErrorCode.BadPickle,
  [CryptoErrorCode.SessionNotReady]: ProtocolErrorCode.UnexpectedMessage,
};

/**
 * The ProtocolError for `err`: a CryptoError of peer input is translated (its message, which
 * never holds a secret, is kept after `context`); ProtocolErrors and anything else (NOT_READY, a
 * bug) pass unchanged.
 */
export function toProtocolError(err: unknown, context: string): unknown {
  if (!CryptoError.is(err)) return err;
  const code = CODES[err.code];
  return code === undefined ? err : new ProtocolError(code, `${context}: ${err.message}`);
}

/** Runs `op`, re-throwing crypto-core refusals as ProtocolErrors. */
export function translated<T>(context: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw toProtocolError(err, context);
  }
}

/** Exact messages (tests compare them). */
export const SessionMessages = {
  unknownSignedPrekey: (id: number) =>
    `session setup: signed prekey ${id} is unknown (rotated out long ago, or never ours): the sender should claim a fresh bundle`,
  unknownOneTimePrekey: (id: number) =>
    `session setup: one-time prekey ${id} is unknown or was already used: the sender should claim a fresh bundle`,
  unknownKemPrekey: (id: number, oneTime: boolean) =>
    oneTime
      ? `session setup: one-time KEM prekey ${id} is unknown or was already used: the sender should claim a fresh bundle`
      : `session setup: last-resort KEM prekey ${id} is unknown (rotated out long ago, or never ours): the sender should claim a fresh bundle`,
  initialMessageDoesNotAuthenticate: () =>
    'session setup: the initial message does not authenticate (its keys or KEM ciphertext were swapped or corrupted, or it was not made for our prekeys)',
  bundleIdentityMismatch: (expected: string, got: string) =>
    `session setup: the prekey bundle belongs to identity ${got}, not to the expected peer ${expected}`,
  senderIdentityMismatch: (expected: string, got: string) =>
    `session: the message was set up by identity ${got}, not by this session's peer ${expected}`,
  replayedInitialMessage: () =>
    'session: this initial message set up a session that has since been replaced (a replay): ignored',
  replayedMessage: () => 'session: this message was already decrypted (a replay or a duplicate delivery)',
  noSessionForRatchetMessage: () =>
    'session: no session with this peer opens the message: start a fresh session with the sender (claim its bundle)',
} as const;
