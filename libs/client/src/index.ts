export { ClientError, ClientErrorCode, type ClientErrorOptions } from './errors.js';
export { BACKOFF_DEFAULTS, Backoff, backoffCeiling, backoffDelay, type BackoffOptions } from './backoff.js';
