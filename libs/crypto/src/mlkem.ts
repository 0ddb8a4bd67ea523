/**
 * ML-KEM-768 (FIPS 203), the module-lattice KEM on its own, from libsodium 1.0.22. X-Wing (kem.ts)
 * is what session setup uses; this file exposes the bare KEM so that it can be checked against
 * FIPS 203 known answers and used where a pure ML-KEM-768 prekey is wanted.
 *
 * Keys are in FIPS 203's formats: the encapsulation key `ek` (384k + 32 = 1184 bytes) and the
 * expanded decapsulation key `dk` (768k + 96 = 2400 bytes), both derived from a 64-byte seed
 * `d || z` (FIPS 203 §6.1). The input checks of FIPS 203 §7.2 and §7.3 are made on every call:
 * lengths here, the modulus check of `ek` by libsodium, the hash check of `dk` here.
 */
import { assertBytes, bytesEqual, wipe } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sodium } from './sodium.js';

/** FIPS 203 §8, Table 3 (k = 3): |ek| = 384k + 32. */
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
/** FIPS 203 §8, Table 3: |dk| = 768k + 96 (dk_PKE || ek || H(ek) || z). */
export const MLKEM768_SECRET_KEY_BYTES = 2400;
/** FIPS 203 §8, Table 3: |c| = 32(du*k + dv). */
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
/** FIPS 203 §7: the shared secret K is 32 bytes. */
export const MLKEM768_SHARED_SECRET_BYTES = 32;
/** FIPS 203 §6.1: the key-generation seed is d || z, 32 bytes each. */
export const MLKEM768_SEED_BYTES = 64;
/** FIPS 203 §6.2: the encapsulation randomness m is 32 bytes. */
export const MLKEM768_ENCAPS_SEED_BYTES = 32;

/** Offsets of the parts of dk (FIPS 203 §6.1, Algorithm 16 step 3: dk_PKE || ek || H(ek) || z). */
const DK_PKE_BYTES = 1152;
const DK_HASH_OFFSET = DK_PKE_BYTES + MLKEM768_PUBLIC_KEY_BYTES;

export interface MlKem768KeyPair {
  /** The encapsulation key `ek` (public). */
  readonly publicKey: Uint8Array;
  /** The decapsulation key `dk` (secret; wipe it when done). */
  readonly secretKey: Uint8Array;
}

export interface MlKem768Encapsulation {
  readonly ciphertext: Uint8Array;
  readonly sharedSecret: Uint8Array;
}

/** FIPS 203 §7.1 ML-KEM.KeyGen: a key pair from fresh randomness. */
export function generateMlKem768KeyPair(): MlKem768KeyPair {
  const { publicKey, privateKey } = sodium().crypto_kem_mlkem768_keypair();
  return { publicKey, secretKey: privateKey };
}

/**
 * FIPS 203 §6.1 ML-KEM.KeyGen_internal(d, z): the key pair determined by the 64-byte seed `d || z`.
 * The seed is the compact form of the secret key; keep it as secret as `dk`.
 */
export function mlkem768KeyPairFromSeed(seed: Uint8Array): MlKem768KeyPair {
  assertBytes(seed, MLKEM768_SEED_BYTES, 'ML-KEM-768 seed');
  const { publicKey, privateKey } = sodium().crypto_kem_mlkem768_seed_keypair(seed);
  return { publicKey, secretKey: privateKey };
}

/**
 * FIPS 203 §7.2 ML-KEM.Encaps: a fresh shared secret and its ciphertext for `publicKey`.
 * Throws MALFORMED_INPUT for a key of the wrong length (the type check) and INVALID_KEY for a
 * key whose coefficients are not reduced modulo q (the modulus check).
 */
export function mlkem768Encapsulate(publicKey: Uint8Array): MlKem768Encapsulation {
  assertBytes(publicKey, MLKEM768_PUBLIC_KEY_BYTES, 'ML-KEM-768 public key');
  try {
    return sodium().crypto_kem_mlkem768_enc(publicKey);
  } catch {
    throw modulusCheckFailed();
  }
}

/**
 * FIPS 203 §6.2 ML-KEM.Encaps_internal(ek, m) with the §7.2 input checks: encapsulation with the
 * caller's 32-byte randomness `m`. For known-answer tests only: a protocol must never choose `m`
 * itself (FIPS 203 §3.3 forbids exposing the internal interface to applications); it calls
 * `mlkem768Encapsulate`.
 */
export function mlkem768EncapsulateDeterministic(
  publicKey: Uint8Array,
  m: Uint8Array,
): MlKem768Encapsulation {
  assertBytes(publicKey, MLKEM768_PUBLIC_KEY_BYTES, 'ML-KEM-768 public key');
  assertBytes(m, MLKEM768_ENCAPS_SEED_BYTES, 'ML-KEM-768 encapsulation randomness');
  try {
    return sodium().crypto_kem_mlkem768_enc_deterministic(publicKey, m);
  } catch {
    throw modulusCheckFailed();
  }
}

/**
 * FIPS 203 §7.3 ML-KEM.Decaps. The ciphertext and key type checks are length checks
 * (MALFORMED_INPUT); the hash check (H(ek) stored in dk equals SHA3-256 of the ek stored in dk,
 * §7.3 step 3) is made here, since libsodium does not make it, and refuses with INVALID_KEY.
 * Implicit rejection (§6.3): a corrupted ciphertext gives a pseudorandom secret, not an error.
 */
export function mlkem768Decapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  assertBytes(secretKey, MLKEM768_SECRET_KEY_BYTES, 'ML-KEM-768 secret key');
  assertBytes(ciphertext, MLKEM768_CIPHERTEXT_BYTES, 'ML-KEM-768 ciphertext');
  const s = sodium();
  const ekHash = s.crypto_hash_sha3256(secretKey.subarray(DK_PKE_BYTES, DK_HASH_OFFSET));
  const hashOk = bytesEqual(ekHash, secretKey.subarray(DK_HASH_OFFSET, DK_HASH_OFFSET + 32));
  wipe(ekHash);
  if (!hashOk) {
    throw new CryptoError(
      CryptoErrorCode.InvalidKey,
      'ml-kem-768: the secret key fails the hash check of FIPS 203 §7.3 (corrupted or not a dk)',
    );
  }
  try {
    return s.crypto_kem_mlkem768_dec(ciphertext, secretKey);
  } catch {
    throw new CryptoError(CryptoErrorCode.InvalidKey, 'ml-kem-768: decapsulation failed');
  }
}

const modulusCheckFailed = () =>
  new CryptoError(
    CryptoErrorCode.InvalidKey,
    'ml-kem-768: the public key fails the modulus check of FIPS 203 §7.2 (coefficients not reduced mod q)',
  );
