export { ProtocolError, ProtocolErrorCode } from './errors.js';
export * from './handshake/index.js';
export * from './limits.js';
export {
  addressEquals,
  addressOf,
  asAddressString,
  formatAddress,
  parseAddress,
  type Address,
  type AddressString,
} from './address/address.js';
export {
  MAX_ENVELOPE_BYTES,
  decodeEnvelope,
  encodeEnvelope,
  peekEnvelopeRoute,
  type Envelope,
} from './envelope/envelope.codec.js';
export {
  formatMessageId,
  generateMessageId,
  parseMessageId,
  type MessageIdString,
} from './envelope/message-id.js';
export { pad } from './envelope/padding.js';
export {
  MAX_APPLICATION_BODY_BYTES,
  PayloadKind,
  openApplicationPayload,
  sealApplicationPayload,
  type ApplicationPayload,
} from './application/application-payload.codec.js';
export {
  ReorderBuffer,
  SendSequence,
  type Released,
  type ReorderOptions,
} from './ordering/reorder-buffer.js';
export { SeenMessageIds } from './ordering/seen-ids.js';
export * from './events.js';
export { validateClientPayload, type ClientPayload } from './validation/client-payloads.validation.js';
export {
  validateReply,
  validateServerPush,
  type ClientResult,
  type ServerEventName,
  type ServerPayload,
} from './validation/server-payloads.validation.js';
export * from './session/index.js';
export { socketParser } from './socket-parser.js';
export { chunk, type ChunkLimits } from './chunk.js';
