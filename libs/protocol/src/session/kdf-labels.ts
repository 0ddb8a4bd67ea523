/**
 * Labels of session setup (PQXDH, Signal's specification revision 3). Every derived key and every
 * signature has its own label, so no value computed for one purpose is accepted for another; "v1"
 * ties them to SESSION_MESSAGE_VERSION and PREKEY_RECORD_VERSION, so two versions never share keys.
 */
const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * PQXDH §2.1 `info`: "an ASCII string identifying the application", at least 8 bytes. Like
 * Signal's "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024" it names the curve, hash and KEM, so a
 * parameter change is a new label.
 */
export const PQXDH_INFO = utf8('USM v1 PQXDH X25519 SHA-256 X-Wing');

/**
 * PQXDH §2.2 KDF: F is 32 0xFF bytes for curve25519, prepended to the key material. It keeps the
 * first 32 bytes of the HKDF input from ever equalling an XEdDSA/Ed25519 secret scalar's
 * encoding (the same reasoning as in X3DH §2.2); we keep it although we sign with Ed25519.
 */
export const PQXDH_F = new Uint8Array(32).fill(0xff);

/** PQXDH §2.2 KDF salt: a zero-filled byte sequence as long as the hash output (SHA-256). */
export const PQXDH_SALT = new Uint8Array(32);

/**
 * What a signed X25519 prekey's Ed25519 signature covers: this context, then the prekey id (u32
 * BE) and the key's encoding (PQXDH §3.2 Sig(IK_B, EncodeEC(SPK_B)), with a domain-separation
 * label and the id added: a signature made for anything else, or for another id, never verifies).
 */
export const SIGNED_PREKEY_SIGNATURE_CONTEXT = utf8('USM v1 signed prekey\0');

/**
 * What a KEM prekey's signature covers: this context, the record kind (last-resort or one-time),
 * the id and the key's encoding (PQXDH §3.2 Sig(IK_B, EncodeKEM(PQSPK_B))). The kind is signed so
 * that a one-time KEM prekey cannot be passed off as a last-resort one, or the other way round.
 */
export const KEM_PREKEY_SIGNATURE_CONTEXT = utf8('USM v1 kem prekey\0');

/** Setup ids: SHA-256(label || prekey header) names one session setup (replay memory, logs). */
export const SETUP_ID_LABEL = utf8('USM v1 session setup id');

/** Associated data of an encrypted session pickle. */
export const SESSION_PICKLE_AD = utf8('USM v1 session pickle');

/** Associated data of an encrypted prekey-store pickle. */
export const PREKEY_STORE_PICKLE_AD = utf8('USM v1 prekey store pickle');
