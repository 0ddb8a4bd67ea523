/**
 * KDF labels and constants of the Double Ratchet (Signal spec §5.2 recommended
 * cryptographic algorithms, with AES-256-GCM as the AEAD). Distinct labels keep every derived
 * key in its own domain; the version in each label lets a future format change them.
 */
const utf8 = (s: string) => new TextEncoder().encode(s);

/** KDF_RK_HE info: HKDF(salt = RK, ikm = DH output) -> RK' | CK | NHK (3 x 32 bytes). */
export const ROOT_KDF_INFO = utf8('USM v1 ratchet root');

/** KDF_CK input bytes (§5.2): MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02). */
export const CHAIN_KDF_MESSAGE_KEY_INPUT = Uint8Array.of(0x01);
export const CHAIN_KDF_NEXT_CHAIN_KEY_INPUT = Uint8Array.of(0x02);

/** ENCRYPT (§5.2): HKDF(ikm = MK, salt = 32 zero bytes, info) -> AES-256 key | 96-bit IV. */
export const MESSAGE_KEY_INFO = utf8('USM v1 message keys');

/** Associated data prefix of pickles encrypted at rest. */
export const PICKLE_AD = utf8('USM v1 ratchet pickle');
