/**
 * Client-client session setup (PQXDH-style, on prekey bundles) flowing into the Double Ratchet,
 * as its users need it: bundles from a claim, a publish request from the owner's prekey store,
 * and the per-peer Session with its reset path. The record and message codecs stay inside.
 */
export { bundleFromClaim, publishRequestOf, type SessionPrekeyBundle, type SignedPrekey } from './prekeys.js';
export { PrekeyStore, type PrekeyStoreOptions } from './prekey-store.js';
export { Session, type AcceptedSession, type SessionDecryptResult } from './session.js';
