import { describe, expect, it } from '@jest/globals';
import { ClientError, ClientErrorCode } from './errors.js';

describe('ClientError', () => {
  it('carries its code, name, cause and retryAfterMs, and is() matches by class and code', () => {
    const cause = new Error('EIO: i/o error');
    const err = new ClientError(ClientErrorCode.RateLimited, 'slow down: retry in 2 s', {
      cause,
      retryAfterMs: 2000,
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('ClientError');
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.cause).toBe(cause);
    expect(err.retryAfterMs).toBe(2000);
    expect(ClientError.is(err)).toBe(true);
    expect(ClientError.is(err, ClientErrorCode.RateLimited)).toBe(true);
    expect(ClientError.is(err, ClientErrorCode.QueueFull)).toBe(false);
    expect(ClientError.is(new Error('x'))).toBe(false);
    expect(ClientError.is(undefined, ClientErrorCode.RateLimited)).toBe(false);
  });

  it('keeps the codes the wire and the applications depend on stable', () => {
    expect(Object.values(ClientErrorCode)).toEqual([
      'QUEUE_FULL',
      'STORAGE_FAILED',
      'BAD_PASSPHRASE',
      'CORRUPT_STORE',
      'EXPIRED',
      'NOT_CONNECTED',
      'CLOCK_SKEW',
      'RATE_LIMITED',
      'RELAY_ERROR',
      'INVALID_ARGUMENT',
      'STORE_CLOSED',
      'STORE_IN_USE',
      'HANDSHAKE_FAILED',
      'DECRYPT_FAILED',
      'PROTOCOL_VIOLATION',
      'HANDLER_FAILED',
      'DECRYPT_PENDING',
    ]);
  });
});
