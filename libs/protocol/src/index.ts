export { ProtocolError, ProtocolErrorCode } from './errors.js';
export * from './handshake/index.js';
