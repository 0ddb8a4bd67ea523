export { ProtocolError, ProtocolErrorCode } from './errors.js';
