/**
 * @usm/crypto: the crypto core of Ultra-Secure Messenger.
 *
 * Await `ready()` once; after that every primitive but AES-256-GCM (and what uses it) is
 * synchronous. Works unchanged in Node 20 and in a browser bundle.
 */
export { ready } from './sodium.js';
export { CryptoError, CryptoErrorCode } from './errors.js';
export { assertBytes, bytesEqual, concatBytes, fromHex, randomBytes, toHex, wipe } from './bytes.js';
export { BinaryReader, BinaryWriter, type BinaryFailure, type BinaryFault } from './binary.js';
export { SerialQueue } from './serial-queue.js';
export {
  AES_256_KEY_BYTES,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  aesGcm,
  createNodeAesGcm,
  createWebCryptoAesGcm,
  setAesGcmBackend,
  type AesGcmBackend,
} from './aes-gcm.js';
export {
  X25519_POINT_BYTES,
  X25519_SCALAR_BYTES,
  createNodeX25519,
  createSodiumX25519,
  setX25519Backend,
  x25519Backend,
  type X25519Backend,
} from './x25519.js';
export { HKDF_MAX_OUTPUT, hkdf, hkdfExpand, hkdfExtract, hmacSha256 } from './hkdf.js';
export {
  ARGON2ID_DEFAULTS,
  ARGON2ID_SALT_BYTES,
  deriveKeyFromPassphrase,
  sha256,
  sha256Sync,
  type Argon2idParams,
} from './hash.js';
export {
  IdentityPublicKey,
  KEY_ENCODING_VERSION,
  KemPublicKey,
  KeyType,
  SecretKey,
  X25519PublicKey,
  shortFingerprint,
} from './keys.js';
export {
  ED25519_SIGNATURE_BYTES,
  assertSignature,
  decodeIdentityKeyPair,
  decodeX25519KeyPair,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  identityKeyPairFromSecret,
  identityToX25519KeyPair,
  identityToX25519PublicKey,
  sign,
  verify,
  x25519,
  x25519KeyPairFromSecret,
  x25519Raw,
  type IdentityKeyPair,
  type X25519KeyPair,
} from './keygen.js';
export {
  XWING_CIPHERTEXT_BYTES,
  XWING_SHARED_SECRET_BYTES,
  decodeKemKeyPair,
  generateKemKeyPair,
  kemDecapsulate,
  kemEncapsulate,
  kemKeyPairFromSecret,
  type KemEncapsulation,
  type KemKeyPair,
} from './kem.js';
export {
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_ENCAPS_SEED_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  MLKEM768_SEED_BYTES,
  MLKEM768_SHARED_SECRET_BYTES,
  generateMlKem768KeyPair,
  mlkem768Decapsulate,
  mlkem768Encapsulate,
  mlkem768EncapsulateDeterministic,
  mlkem768KeyPairFromSeed,
  type MlKem768Encapsulation,
  type MlKem768KeyPair,
} from './mlkem.js';
export {
  FINGERPRINT_ITERATIONS,
  fingerprintDigits,
  formatSafetyNumber,
  safetyNumber,
  type SafetyNumberParty,
} from './fingerprint.js';
export {
  MESSAGE_KEY_BYTES,
  MessageKey,
  RANDOM_NONCE_OVERHEAD,
  openWithMessageKey,
  openWithRandomNonce,
  sealWithMessageKey,
  sealWithRandomNonce,
} from './encryption.js';
export {
  DoubleRatchet,
  HEADER_KEY_BYTES,
  SHARED_SECRET_BYTES,
  type InitiatorParams,
  type ResponderParams,
} from './ratchet/double-ratchet.js';
export { RATCHET_MESSAGE_OVERHEAD, RATCHET_MESSAGE_VERSION } from './ratchet/ratchet-message.js';
export { PICKLE_KEY_BYTES, RATCHET_PICKLE_VERSION } from './ratchet/ratchet-state.js';
export { MAX_CHAIN_INDEX, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS } from './ratchet/limits.js';
