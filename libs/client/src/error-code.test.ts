/** Test kit: the ClientError code a call throws, for table-driven refusal tests. */
import { ClientError } from './errors.js';

/** The error code `call` throws, or a note saying it threw something else or nothing. */
export function codeOf(call: () => unknown): string {
  try {
    call();
  } catch (err) {
    return ClientError.is(err) ? err.code : `not a ClientError: ${String(err)}`;
  }
  return 'no error';
}
