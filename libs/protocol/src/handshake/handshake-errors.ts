/**
 * Errors of the handshake: every failure leaves as a ProtocolError. Crypto-core errors are
 * translated here, so a caller branches on one code enum; a clock-skew refusal carries the
 * relay's time, which is not secret, so the client can tell its user (or correct its clock).
 */
import { CryptoError, CryptoErrorCode } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

/** CLOCK_SKEW with the relay's clock reading. `ProtocolError.is(err, ProtocolErrorCode.ClockSkew)` holds. */
export class HandshakeClockSkewError extends ProtocolError {
  constructor(
    /** The relay's clock when it refused, ms since the Unix epoch. */
    readonly serverTimeMs: number,
    /** The timestamp the client sent. */
    readonly clientTimeMs: number,
    /** The accepted distance, either way. */
    readonly skewWindowMs: number,
  ) {
    const diff = clientTimeMs - serverTimeMs;
    super(
      ProtocolErrorCode.ClockSkew,
      `handshake: the client's clock is ${Math.abs(diff)} ms ${diff > 0 ? 'ahead of' : 'behind'} the relay's ` +
        `(accepted: up to ${skewWindowMs} ms either way); relay time is ${serverTimeMs} ms since the epoch: ` +
        'set the device clock (or retry with the relay time)',
    );
  }
}

const CODES: Partial<Record<CryptoErrorCode, ProtocolErrorCode>> = {
  [CryptoErrorCode.MalformedInput]: ProtocolErrorCode.Malformed,
  [CryptoErrorCode.InvalidKey]: ProtocolErrorCode.InvalidKey,
  [CryptoErrorCode.BadSignature]: ProtocolErrorCode.BadSignature,
  [CryptoErrorCode.BadMac]: ProtocolErrorCode.BadMac,
};

/**
 * The ProtocolError for a crypto-core refusal of peer input. Other crypto errors (NOT_READY:
 * a programming error) are returned unchanged.
 */
export function cryptoToProtocolError(err: CryptoError): ProtocolError | CryptoError {
  const code = CODES[err.code];
  return code === undefined ? err : new ProtocolError(code, `handshake: ${err.message}`);
}

/** Re-throws `err` as a ProtocolError when it is a crypto-core refusal of peer input. */
export function rethrowAsProtocolError(err: unknown): never {
  if (CryptoError.is(err)) throw cryptoToProtocolError(err);
  throw err;
}
