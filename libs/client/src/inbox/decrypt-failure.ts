/**
 * What the client does with mail that does not decrypt, per error code (docs/client.md, "Mail
 * that does not decrypt"). The rule: the relay deletes what the client acks, so only mail that can
 * never decrypt is acked. Mail that may still decrypt later stays stored at the relay.
 *
 * | code (ProtocolError)      | can it decrypt later?                                          | outcome     |
 * | ------------------------- | -------------------------------------------------------------- | ----------- |
 * | REPLAY                    | no: its key was used, the message was delivered before          | ack, silent |
 * | TOO_LARGE                 | yes: it is more than MAX_SKIP ahead of the chain; the mail in   | keep        |
 * |                           | between moves the chain forward                                 |             |
 * | NO_SESSION, with a session| maybe: no held header key opens it. Mail of a chain not yet     | keep        |
 * |                           | reached, or of a chain the limits evicted (its sender must      |             |
 * |                           | resend), looks the same as a forgery                            |             |
 * | NO_SESSION, no session    | no: a ratchet message whose session this device lost            | ack, reset  |
 * | BAD_MAC, INVALID_KEY,     | no: altered, forged, or not from this session's peer            | ack, report |
 * | IDENTITY_MISMATCH,        |                                                                 |             |
 * | BAD_PREKEY, MALFORMED,    |                                                                 |             |
 * | UNSUPPORTED_VERSION       |                                                                 |             |
 * | anything else             | unknown failure of this device (not of the message)             | keep        |
 */
import { ProtocolError, ProtocolErrorCode } from '@usm/protocol';

export type DecryptFailureOutcome =
  /** Ack it; tell nobody (a replay of a message already delivered). */
  | 'ack-silently'
  /** Ack it and report DECRYPT_FAILED: it can never decrypt. */
  | 'drop'
  /** Ack it, report DECRYPT_FAILED, and start a new session with the peer (our state was lost). */
  | 'drop-and-reset'
  /** Do not ack: it stays at the relay and is tried again; report DECRYPT_PENDING once. */
  | 'keep';

const NEVER: ReadonlySet<string> = new Set([
  ProtocolErrorCode.BadMac,
  ProtocolErrorCode.InvalidKey,
  ProtocolErrorCode.IdentityMismatch,
  ProtocolErrorCode.BadPrekey,
  ProtocolErrorCode.Malformed,
  ProtocolErrorCode.UnsupportedVersion,
]);

/** The outcome for a message whose decryption threw `err`; `hadSession`: a session with the sender existed. */
export function decryptFailureOutcome(err: unknown, hadSession: boolean): DecryptFailureOutcome {
  if (!ProtocolError.is(err)) return 'keep';
  if (err.code === ProtocolErrorCode.Replay) return 'ack-silently';
  if (err.code === ProtocolErrorCode.TooLarge) return 'keep';
  if (err.code === ProtocolErrorCode.NoSession) return hadSession ? 'keep' : 'drop-and-reset';
  return NEVER.has(err.code) ? 'drop' : 'keep';
}
