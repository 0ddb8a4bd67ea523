/**
 * Client-client session setup (PQXDH-style, on prekey bundles) flowing into the Double Ratchet:
 * prekey records and bundles, the owner's prekey store, the session message codec, and the
 * per-peer Session with its reset path.
 */
export {
  KEM_PREKEY_RECORD_BYTES,
  MAX_PREKEY_BUNDLE_BYTES,
  ONE_TIME_PREKEY_RECORD_BYTES,
  PREKEY_RECORD_VERSION,
  PrekeyKind,
  SIGNED_PREKEY_RECORD_BYTES,
  bundleFromClaim,
  decodeKemPrekey,
  decodeOneTimePrekey,
  decodePrekeyBundle,
  decodeSignedPrekey,
  encodeKemPrekey,
  encodeOneTimePrekey,
  encodePrekeyBundle,
  encodeSignedPrekey,
  kemPrekeySignedData,
  prekeyRecordOf,
  publishRequestOf,
  signedPrekeySignedData,
  verifyBundleSignatures,
  type KemPrekey,
  type OneTimePrekey,
  type PrekeyPublication,
  type SessionPrekeyBundle,
  type SignedPrekey,
} from './prekeys.js';
export { PREKEY_STORE_PICKLE_VERSION, PrekeyStore, type PrekeyStoreOptions } from './prekey-store.js';
export {
  MAX_PREKEY_HEADER_BYTES,
  MAX_SESSION_MESSAGE_BYTES,
  SESSION_MESSAGE_VERSION,
  SessionMessageType,
  decodePrekeyHeader,
  decodeSessionMessage,
  encodePrekeyHeader,
  encodeSessionMessage,
  setupIdOf,
  type PrekeyHeader,
  type SessionMessage,
} from './session-message.js';
export { associatedDataOf } from './pqxdh.js';
export {
  SESSION_PICKLE_VERSION,
  Session,
  type AcceptedSession,
  type SessionDecryptResult,
} from './session.js';
export { SessionMessages } from './session-errors.js';
export {
  MAX_ARCHIVED_SESSION_STATES,
  MAX_ONE_TIME_PREKEYS_PER_BATCH,
  MAX_REMEMBERED_SETUP_IDS,
  MAX_SIGNED_PREKEYS_KEPT,
  MAX_STORED_ONE_TIME_KEM_PREKEYS,
  MAX_STORED_ONE_TIME_PREKEYS,
} from './limits.js';
