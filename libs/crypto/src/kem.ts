/**
 * The hybrid post-quantum KEM: X-Wing (draft-connolly-cfrg-xwing-kem), ML-KEM-768 (FIPS 203)
 * combined with X25519, from libsodium 1.0.22. Secure if either component is. Used for the
 * signed post-quantum prekey of session setup (PQXDH-style).
 */
import { assertBytes } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { KemPublicKey, KeyType, SECRET_KEY_BYTES, SecretKey, decodeKey } from './keys.js';
import { sodium } from './sodium.js';

export const XWING_CIPHERTEXT_BYTES = 1120;
export const XWING_SHARED_SECRET_BYTES = 32;

export interface KemKeyPair {
  readonly publicKey: KemPublicKey;
  readonly secretKey: SecretKey<KeyType.XWing>;
}

export interface KemEncapsulation {
  readonly ciphertext: Uint8Array;
  readonly sharedSecret: Uint8Array;
}

export function generateKemKeyPair(): KemKeyPair {
  const { publicKey, privateKey } = sodium().crypto_kem_xwing_keypair();
  return {
    publicKey: new KemPublicKey(publicKey),
    secretKey: new SecretKey(KeyType.XWing, privateKey, publicKey),
  };
}

/** X-Wing key pairs are derived from a 32-byte seed (the secret key is that seed). */
export function kemKeyPairFromSecret(seed: Uint8Array): KemKeyPair {
  assertBytes(seed, SECRET_KEY_BYTES[KeyType.XWing], 'X-Wing secret key');
  const { publicKey } = sodium().crypto_kem_xwing_seed_keypair(seed);
  return { publicKey: new KemPublicKey(publicKey), secretKey: new SecretKey(KeyType.XWing, seed, publicKey) };
}

export function decodeKemKeyPair(encoded: Uint8Array): KemKeyPair {
  return kemKeyPairFromSecret(decodeKey(encoded, KeyType.XWing, SECRET_KEY_BYTES, 'secret'));
}

/** Encapsulates a fresh shared secret to `publicKey`. */
export function kemEncapsulate(publicKey: KemPublicKey): KemEncapsulation {
  try {
    return sodium().crypto_kem_xwing_enc(publicKey.bytes);
  } catch {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'x-wing: the encapsulation key was refused');
  }
}

/**
 * Decapsulates. ML-KEM's implicit rejection (FIPS 203 §6.3) means a corrupted ciphertext yields
 * a different, pseudorandom secret rather than an error: the caller's key confirmation (an AEAD
 * tag over the first message) is what detects it.
 */
export function kemDecapsulate(secretKey: SecretKey<KeyType.XWing>, ciphertext: Uint8Array): Uint8Array {
  assertBytes(ciphertext, XWING_CIPHERTEXT_BYTES, 'X-Wing ciphertext');
  try {
    return sodium().crypto_kem_xwing_dec(ciphertext, secretKey.bytes);
  } catch {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'x-wing: decapsulation failed');
  }
}
