/** Exact error assertions: a code AND the whole message, as the team's rules ask. */
import { expect } from '@jest/globals';
import { ProtocolError, type ProtocolErrorCode } from '../src/errors.js';

/** The error `run` throws; fails when it throws nothing. */
export function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, none was thrown');
}

/** Asserts `run` throws a ProtocolError with exactly this code and message. */
export function expectProtocolError(run: () => unknown, code: ProtocolErrorCode, message: string): void {
  const err = catchError(run);
  expect(err).toBeInstanceOf(ProtocolError);
  expect({ code: (err as ProtocolError).code, message: (err as ProtocolError).message }).toEqual({
    code,
    message,
  });
}
