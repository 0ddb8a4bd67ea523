export { ProtocolError, ProtocolErrorCode } from './errors.js';
export * from './handshake/index.js';
export * from './limits.js';
export {
  addressEquals,
  addressOf,
  asAddressString,
  checkAddress,
  decodeAddress,
  encodeAddress,
  formatAddress,
  parseAddress,
  type Address,
  type AddressString,
} from './address/address.js';
export {
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_VERSION,
  MAX_ENVELOPE_BYTES,
  decodeEnvelope,
  encodeEnvelope,
  peekEnvelopeRoute,
  type Envelope,
} from './envelope/envelope.codec.js';
export {
  asMessageIdString,
  checkMessageId,
  formatMessageId,
  generateMessageId,
  parseMessageId,
  type MessageIdString,
} from './envelope/message-id.js';
export { pad, paddedLength, unpad } from './envelope/padding.js';
export {
  APPLICATION_HEADER_BYTES,
  APPLICATION_PAYLOAD_VERSION,
  MAX_APPLICATION_BODY_BYTES,
  PayloadKind,
  decodeApplicationPayload,
  encodeApplicationPayload,
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
export { MAX_SEEN_IDS_BYTES, SEEN_IDS_VERSION, SeenMessageIds } from './ordering/seen-ids.js';
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
