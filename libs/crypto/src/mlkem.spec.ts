import {
  CryptoError,
  CryptoErrorCode,
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  generateMlKem768KeyPair,
  mlkem768Decapsulate,
  mlkem768Encapsulate,
  mlkem768KeyPairFromSeed,
  ready,
} from './index.js';

beforeAll(() => ready());

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('ML-KEM-768', () => {
  it('agrees on a shared secret, and a changed ciphertext gives another one (implicit rejection)', () => {
    const { publicKey, secretKey } = generateMlKem768KeyPair();
    expect([publicKey.length, secretKey.length]).toEqual([
      MLKEM768_PUBLIC_KEY_BYTES,
      MLKEM768_SECRET_KEY_BYTES,
    ]);
    const { ciphertext, sharedSecret } = mlkem768Encapsulate(publicKey);
    expect(ciphertext.length).toBe(MLKEM768_CIPHERTEXT_BYTES);
    expect(mlkem768Decapsulate(secretKey, ciphertext)).toEqual(sharedSecret);
    ciphertext[0]! ^= 1;
    expect(mlkem768Decapsulate(secretKey, ciphertext)).not.toEqual(sharedSecret);
  });

  it('derives the same key pair from the same seed', () => {
    const seed = new Uint8Array(64).fill(7);
    expect(mlkem768KeyPairFromSeed(seed)).toEqual(mlkem768KeyPairFromSeed(seed));
  });

  it('refuses a secret key whose stored H(ek) does not match its ek (FIPS 203 §7.3 hash check)', () => {
    const { publicKey, secretKey } = generateMlKem768KeyPair();
    const { ciphertext } = mlkem768Encapsulate(publicKey);
    for (const offset of [1152 + 100, 1152 + 1184 + 5]) {
      // a byte of the embedded ek, then a byte of the stored hash
      const corrupted = secretKey.slice();
      corrupted[offset]! ^= 1;
      const err = errorOf(() => mlkem768Decapsulate(corrupted, ciphertext));
      expect(CryptoError.is(err, CryptoErrorCode.InvalidKey)).toBe(true);
      expect((err as Error).message).toBe(
        'ml-kem-768: the secret key fails the hash check of FIPS 203 §7.3 (corrupted or not a dk)',
      );
    }
  });

  it('refuses inputs of the wrong length with MALFORMED_INPUT', () => {
    const { secretKey } = generateMlKem768KeyPair();
    expect(() => mlkem768Encapsulate(new Uint8Array(1183))).toThrow(
      'ML-KEM-768 public key: expected 1184 bytes, got 1183',
    );
    const err = errorOf(() => mlkem768Decapsulate(secretKey, new Uint8Array(1087)));
    expect(CryptoError.is(err, CryptoErrorCode.MalformedInput)).toBe(true);
    expect(
      CryptoError.is(
        errorOf(() => mlkem768KeyPairFromSeed(new Uint8Array(32))),
        CryptoErrorCode.MalformedInput,
      ),
    ).toBe(true);
  });
});
