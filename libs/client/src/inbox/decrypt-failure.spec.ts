import { describe, expect, it } from '@jest/globals';
import { CryptoError, CryptoErrorCode } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '@usm/protocol';
import { decryptFailureOutcome } from './decrypt-failure.js';

const e = (code: ProtocolErrorCode) => new ProtocolError(code, 'test');

describe('decryptFailureOutcome', () => {
  it.each<[ProtocolErrorCode, boolean, string]>([
    [ProtocolErrorCode.Replay, true, 'ack-silently'],
    [ProtocolErrorCode.TooLarge, true, 'keep'],
    [ProtocolErrorCode.TooLarge, false, 'keep'],
    [ProtocolErrorCode.NoSession, true, 'keep'],
    [ProtocolErrorCode.NoSession, false, 'drop-and-reset'],
    [ProtocolErrorCode.BadMac, true, 'drop'],
    [ProtocolErrorCode.InvalidKey, true, 'drop'],
    [ProtocolErrorCode.IdentityMismatch, false, 'drop'],
    [ProtocolErrorCode.BadPrekey, false, 'drop'],
    [ProtocolErrorCode.Malformed, true, 'drop'],
    [ProtocolErrorCode.UnsupportedVersion, true, 'drop'],
    [ProtocolErrorCode.Internal, true, 'keep'],
  ])('%s (session: %s) -> %s', (code, hadSession, outcome) => {
    expect(decryptFailureOutcome(e(code), hadSession)).toBe(outcome);
  });

  it('keeps mail that failed for a reason of this device, not of the message', () => {
    expect(decryptFailureOutcome(new Error('storage'), true)).toBe('keep');
    expect(decryptFailureOutcome(new CryptoError(CryptoErrorCode.NotReady, 'x'), true)).toBe('keep');
  });
});
