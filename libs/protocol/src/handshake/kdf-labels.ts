/**
 * Labels of the client <-> relay handshake: HKDF labels of the key schedule and the context
 * strings that prefix every signed transcript. Every derived key and every signature has its
 * own label, so no value computed for one purpose is ever accepted for another (RFC 8446 §4.4.3
 * prefixes CertificateVerify's content with a context string for the same reason, and §7.1
 * gives every Derive-Secret its own label). "v1" ties them to HANDSHAKE_VERSION: a new version
 * changes the labels, so keys of two versions never coincide.
 */
const utf8 = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Key schedule (RFC 8446 §7.1 shape: Extract once from the DH output, then one Expand per key
// with `label || transcript hash` as info)
// ---------------------------------------------------------------------------------------------

/** HKDF-Extract salt: handshake_secret = HKDF-Extract(salt, X25519(e_C, e_R)). */
export const HANDSHAKE_EXTRACT_SALT = utf8('USM v1 handshake extract');

/** AES-256-GCM key (a one-time key) that seals the relay's identity key and signature. */
export const RELAY_MATERIAL_KEY_LABEL = utf8('USM v1 hs relay material');

/** HMAC key of the relay's Finished MAC (RFC 8446 §4.4.4 finished_key, server side). */
export const RELAY_FINISHED_KEY_LABEL = utf8('USM v1 hs relay finished');

/** HMAC key of the client's Finished MAC (RFC 8446 §4.4.4 finished_key, client side). */
export const CLIENT_FINISHED_KEY_LABEL = utf8('USM v1 hs client finished');

/** The secret kept between message 2 and message 3, from which the session keys come. */
export const MASTER_SECRET_LABEL = utf8('USM v1 hs master');

/** Traffic key of frames the client sends to the relay. */
export const CLIENT_TO_RELAY_KEY_LABEL = utf8('USM v1 hs traffic c2r');

/** Traffic key of frames the relay sends to the client. */
export const RELAY_TO_CLIENT_KEY_LABEL = utf8('USM v1 hs traffic r2c');

/** Public session id: names the session in logs and frames without revealing a key. */
export const SESSION_ID_LABEL = utf8('USM v1 hs session id');

// ---------------------------------------------------------------------------------------------
// Signature contexts (RFC 8446 §4.4.3: the signed content is context || 0x00 || hash)
// ---------------------------------------------------------------------------------------------

/** What the client signs in message 1 (Init). */
export const CLIENT_INIT_SIGNATURE_CONTEXT = utf8('USM v1 handshake client init\0');

/** What the relay signs in message 2 (sealed inside the Response). */
export const RELAY_SIGNATURE_CONTEXT = utf8('USM v1 handshake relay verify\0');

/** What the client signs in message 3 (Complete). */
export const CLIENT_SIGNATURE_CONTEXT = utf8('USM v1 handshake client verify\0');

// ---------------------------------------------------------------------------------------------
// Anti-replay
// ---------------------------------------------------------------------------------------------

/**
 * The replay store keys on SHA-256(label || client identity || nonce), not on the nonce: the
 * store (a shared PostgreSQL table) never holds a nonce, and one client cannot spend another
 * client's nonce to get that client's handshake refused as a replay.
 */
export const REPLAY_KEY_LABEL = utf8('USM v1 handshake replay key');
