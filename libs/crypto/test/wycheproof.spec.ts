/**
 * Known-answer tests from Project Wycheproof for every primitive of @usm/crypto, run through the
 * public API (src/index.ts), never through libsodium directly (its module is only handed to the
 * X25519 backend factories). Every vector of each file is run and counted; a file that matched no
 * vector, or fewer than it holds, fails.
 *
 * What "invalid" and "acceptable" mean per primitive (the decisions this suite pins):
 *  - X25519 (x25519Raw on each backend in turn, createNodeX25519 and createSodiumX25519 made
 *    current with setX25519Backend; same rules and a count per backend). No vector is "invalid".
 *    "acceptable" vectors with flag ZeroSharedSecret (in this file exactly those with
 *    LowOrderPublic) must be REFUSED with INVALID_KEY and the exact message: the all-zero
 *    output check of RFC 7748 §6.1. Every other "acceptable" vector (Twist, NonCanonicalPublic,
 *    SmallPublicKey, EdgeCaseShared, SpecialPublicKey) must give exactly the expected shared secret:
 *    RFC 7748 §5 defines the value of a non-canonical u (taken mod p) and of a point on the twist.
 *  - Ed25519 (verify). Strict: every "invalid" vector is refused: false for a 64-byte signature
 *    (S >= L, non-canonical R, wrong R or S), MALFORMED_INPUT for a signature of another length
 *    (truncated, compressed, trailing garbage). No "acceptable" vectors.
 *  - AES-GCM (createNodeAesGcm and createWebCryptoAesGcm). Groups with 256-bit keys, 96-bit IVs and
 *    128-bit tags run in full: "valid" encrypts to ct || tag and decrypts back; "invalid" (modified
 *    tag) is refused with BAD_MAC. Every other group (128/192-bit keys, IVs other than 96 bits,
 *    including the 0-bit IVs Wycheproof marks invalid) is refused with MALFORMED_INPUT on encrypt and
 *    decrypt, whatever its result: our API takes only AES-256 with 96-bit IVs (SP 800-38D §5.2.1.1).
 *  - HKDF-SHA-256 (hkdf). "valid" gives okm (an empty salt also via `undefined`, RFC 5869 §2.2);
 *    "invalid" (output longer than 255 * 32, RFC 5869 §2.3) is refused with MALFORMED_INPUT.
 *  - HMAC-SHA-256 (hmacSha256). Our API returns the full tag and has no verify call; the vectors use
 *    tags truncated to tagSize bits, so the first tagSize/8 bytes are compared with bytesEqual:
 *    equal for "valid", different for "invalid" (modified tag).
 *  - ML-KEM-768 (mlkem.ts). mlkem_768_test: the seed d || z gives the expected ek
 *    (mlkem768KeyPairFromSeed, FIPS 203 §6.1) and decapsulating c with its dk gives K
 *    (mlkem768Decapsulate, §7.3); "invalid" vectors have a seed or a ciphertext of the wrong length
 *    and are refused with MALFORMED_INPUT. mlkem_768_encaps_test: ek and m give c and K
 *    (mlkem768EncapsulateDeterministic, §6.2 with the §7.2 checks); "invalid" keys of the wrong
 *    length are refused with MALFORMED_INPUT, keys failing the modulus check (§7.2; flag
 *    ModulusOverflow, comment "Public key not reduced") with INVALID_KEY, by the randomized
 *    mlkem768Encapsulate as well. The expanded dk is not in the vectors, so decapsulation is reached
 *    only through keys derived from the seed. No "acceptable" vectors.
 * An "acceptable" vector where none is expected fails the suite: a new file forces a decision.
 *
 * Failures are reported as tcIds and comments only, never vector bytes.
 */
import * as nodeCrypto from 'node:crypto';
import libsodium from 'libsodium-wrappers-sumo';
import {
  CryptoError,
  CryptoErrorCode,
  IdentityPublicKey,
  assertSignature,
  bytesEqual,
  createNodeAesGcm,
  createNodeX25519,
  createSodiumX25519,
  createWebCryptoAesGcm,
  fromHex,
  hkdf,
  hmacSha256,
  mlkem768Decapsulate,
  mlkem768Encapsulate,
  mlkem768EncapsulateDeterministic,
  mlkem768KeyPairFromSeed,
  ready,
  setX25519Backend,
  toHex,
  verify,
  x25519Backend,
  x25519Raw,
  type AesGcmBackend,
  type X25519Backend,
} from '../src/index.js';
import { VectorCount, describeTest, loadWycheproof, type WycheproofTest } from './wycheproof.js';

interface XdhTest extends WycheproofTest {
  readonly public: string;
  readonly private: string;
  readonly shared: string;
}
interface EddsaTest extends WycheproofTest {
  readonly msg: string;
  readonly sig: string;
}
interface AeadTest extends WycheproofTest {
  readonly key: string;
  readonly iv: string;
  readonly aad: string;
  readonly msg: string;
  readonly ct: string;
  readonly tag: string;
}
interface HkdfTest extends WycheproofTest {
  readonly ikm: string;
  readonly salt: string;
  readonly info: string;
  readonly size: number;
  readonly okm: string;
}
interface MacTest extends WycheproofTest {
  readonly key: string;
  readonly msg: string;
  readonly tag: string;
}
interface MlKemTest extends WycheproofTest {
  readonly seed: string;
  readonly ek?: string;
  readonly c: string;
  readonly K: string;
}
interface MlKemEncapsTest extends WycheproofTest {
  readonly ek: string;
  readonly m: string;
  readonly c: string;
  readonly K: string;
}

const x25519File = loadWycheproof<{ tests: XdhTest[] }>('x25519_test.json');
const ed25519File = loadWycheproof<{ publicKey: { pk: string }; tests: EddsaTest[] }>('ed25519_test.json');
const aesGcmFile = loadWycheproof<{ keySize: number; ivSize: number; tagSize: number; tests: AeadTest[] }>(
  'aes_gcm_test.json',
);
const hkdfFile = loadWycheproof<{ tests: HkdfTest[] }>('hkdf_sha256_test.json');
const hmacFile = loadWycheproof<{ tagSize: number; tests: MacTest[] }>('hmac_sha256_test.json');
const mlkemFile = loadWycheproof<{ tests: MlKemTest[] }>('mlkem_768_test.json');
const mlkemEncapsFile = loadWycheproof<{ tests: MlKemEncapsTest[] }>('mlkem_768_encaps_test.json');

const counts: VectorCount[] = [];

function newCount(file: string): VectorCount {
  const count = new VectorCount(file);
  counts.push(count);
  return count;
}

/** The error `fn` throws, or undefined. */
function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function asyncErrorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The common end of every file's test: nothing failed, every vector of the file ran. */
function expectAllRan(count: VectorCount, numberOfTests: number, failures: string[]): void {
  expect(failures).toEqual([]);
  expect(count.total).toBeGreaterThan(0);
  expect(count.total).toBe(numberOfTests);
}

const ZERO_SHARED_MESSAGE =
  'x25519: the shared secret is all zero (low-order or non-contributory public key)';

const noAcceptable = (t: WycheproofTest) =>
  `${describeTest(t)}: "acceptable" but this primitive has no rule for acceptable vectors`;

beforeAll(async () => {
  await ready();
  await libsodium.ready;
});

afterAll(() => {
  for (const count of counts) console.log(`wycheproof ${count}`);
});

describe('Wycheproof known-answer tests', () => {
  describe.each([
    ['node:crypto', () => createNodeX25519(nodeCrypto, libsodium)],
    ['libsodium', () => createSodiumX25519(libsodium)],
  ] as const)('X25519 on the %s backend', (name, makeBackend) => {
    let previous: X25519Backend;
    beforeAll(() => {
      previous = x25519Backend();
      const backend = makeBackend();
      expect(backend.name).toBe(name);
      setX25519Backend(backend);
    });
    afterAll(() => setX25519Backend(previous));

    it('x25519Raw gives every shared secret and refuses the all-zero ones (RFC 7748 §6.1)', () => {
      expect(x25519Backend().name).toBe(name);
      const count = newCount(`x25519_test.json [${name}]`);
      const failures: string[] = [];
      let refused = 0;
      for (const group of x25519File.testGroups) {
        for (const t of group.tests) {
          count.add(t.result);
          const zeroShared = /^(00)+$/.test(t.shared);
          const mustRefuse = t.result === 'acceptable' && t.flags.includes('ZeroSharedSecret');
          if (t.flags.includes('ZeroSharedSecret') !== zeroShared) {
            failures.push(`${describeTest(t)}: flag ZeroSharedSecret does not match the expected output`);
          }
          if (t.flags.includes('LowOrderPublic') && !mustRefuse) {
            failures.push(`${describeTest(t)}: LowOrderPublic without an all-zero output`);
          }
          if (t.result === 'invalid') {
            failures.push(`${describeTest(t)}: no rule for "invalid" X25519 vectors`);
            continue;
          }
          if (mustRefuse) {
            refused++;
            const err = errorOf(() => x25519Raw(fromHex(t.private), fromHex(t.public)));
            if (!CryptoError.is(err, CryptoErrorCode.InvalidKey) || err.message !== ZERO_SHARED_MESSAGE) {
              failures.push(`${describeTest(t)}: an all-zero shared secret was not refused with INVALID_KEY`);
            }
            continue;
          }
          let shared: Uint8Array | undefined;
          const err = errorOf(() => (shared = x25519Raw(fromHex(t.private), fromHex(t.public))));
          if (err !== undefined || shared === undefined || toHex(shared) !== t.shared) {
            failures.push(`${describeTest(t)} [${t.flags.join(',')}]: wrong or no shared secret`);
          }
        }
      }
      expect(refused).toBeGreaterThan(0);
      expectAllRan(count, x25519File.numberOfTests, failures);
    });
  });

  it('Ed25519: verify accepts every valid signature and refuses every invalid one (RFC 8032 §5.1.7)', () => {
    const count = newCount('ed25519_test.json');
    const failures: string[] = [];
    for (const group of ed25519File.testGroups) {
      const publicKey = new IdentityPublicKey(fromHex(group.publicKey.pk));
      for (const t of group.tests) {
        count.add(t.result);
        const msg = fromHex(t.msg);
        const sig = fromHex(t.sig);
        if (t.result === 'valid') {
          if (verify(publicKey, msg, sig) !== true)
            failures.push(`${describeTest(t)}: valid signature refused`);
        } else if (t.result === 'invalid') {
          if (sig.length !== 64) {
            const err = errorOf(() => verify(publicKey, msg, sig));
            if (!CryptoError.is(err, CryptoErrorCode.MalformedInput)) {
              failures.push(
                `${describeTest(t)}: a ${sig.length}-byte signature was not refused as malformed`,
              );
            }
          } else {
            if (verify(publicKey, msg, sig) !== false) {
              failures.push(`${describeTest(t)} [${t.flags.join(',')}]: invalid signature accepted`);
            }
            const err = errorOf(() => assertSignature(publicKey, msg, sig, 'vector'));
            if (!CryptoError.is(err, CryptoErrorCode.BadSignature)) {
              failures.push(`${describeTest(t)}: assertSignature did not throw BAD_SIGNATURE`);
            }
          }
        } else {
          failures.push(noAcceptable(t));
        }
      }
    }
    expectAllRan(count, ed25519File.numberOfTests, failures);
  });

  it('Ed25519: a small-order public key with the identity as R and S = 0 is refused (strict verify)', () => {
    // Beyond Wycheproof (its file has no small-order keys): with A = R = the identity point and
    // S = 0, [S]B = R + [k]A holds for every message, so a verifier that lets small-order A or R
    // through accepts this "signature" of anything. RFC 8032 §5.1.7 alone does not exclude it;
    // libsodium's strict verify does (refuses small-order A and R), and we rely on that.
    const identity = fromHex('01' + '00'.repeat(31));
    const forged = fromHex('01' + '00'.repeat(31) + '00'.repeat(32));
    expect(verify(new IdentityPublicKey(identity), new TextEncoder().encode('any message'), forged)).toBe(
      false,
    );
  });

  describe.each([
    ['node:crypto', () => createNodeAesGcm(nodeCrypto)],
    ['webcrypto', () => createWebCryptoAesGcm(globalThis.crypto.subtle)],
  ] as const)('AES-GCM on the %s backend', (name, makeBackend) => {
    it('matches every 256-bit / 96-bit IV vector and refuses every other key and IV size', async () => {
      const backend: AesGcmBackend = makeBackend();
      expect(backend.name).toBe(name);
      const count = newCount(`aes_gcm_test.json [${name}]`);
      const failures: string[] = [];
      let fullRun = 0;
      for (const group of aesGcmFile.testGroups) {
        const supported = group.keySize === 256 && group.ivSize === 96;
        for (const t of group.tests) {
          count.add(t.result);
          const [key, iv, aad, msg] = [fromHex(t.key), fromHex(t.iv), fromHex(t.aad), fromHex(t.msg)];
          const sealed = fromHex(t.ct + t.tag);
          if (group.tagSize !== 128) {
            // No such group in this file. Our API takes ct || 16-byte tag, so it cannot be told a
            // shorter tag exists: it must still never return the plaintext.
            const err = await asyncErrorOf(() => backend.decrypt(key, iv, sealed, aad));
            if (!CryptoError.is(err))
              failures.push(`${describeTest(t)}: a ${group.tagSize}-bit tag was accepted`);
            continue;
          }
          if (!supported) {
            const encErr = await asyncErrorOf(() => backend.encrypt(key, iv, msg, aad));
            const decErr = await asyncErrorOf(() => backend.decrypt(key, iv, sealed, aad));
            if (
              !CryptoError.is(encErr, CryptoErrorCode.MalformedInput) ||
              !CryptoError.is(decErr, CryptoErrorCode.MalformedInput)
            ) {
              failures.push(
                `${describeTest(t)}: key ${group.keySize} bits / IV ${group.ivSize} bits not refused as malformed`,
              );
            }
            continue;
          }
          fullRun++;
          if (t.result === 'valid') {
            const out = await backend.encrypt(key, iv, msg, aad);
            if (toHex(out) !== t.ct + t.tag) failures.push(`${describeTest(t)}: wrong ciphertext or tag`);
            const opened = await asyncErrorOf(async () => {
              if (toHex(await backend.decrypt(key, iv, sealed, aad)) !== t.msg)
                throw new Error('wrong plaintext');
            });
            if (opened !== undefined) failures.push(`${describeTest(t)}: did not decrypt to the plaintext`);
          } else if (t.result === 'invalid') {
            const err = await asyncErrorOf(() => backend.decrypt(key, iv, sealed, aad));
            if (!CryptoError.is(err, CryptoErrorCode.BadMac)) {
              failures.push(`${describeTest(t)} [${t.flags.join(',')}]: not refused with BAD_MAC`);
            }
          } else {
            failures.push(noAcceptable(t));
          }
        }
      }
      expect(fullRun).toBeGreaterThan(0);
      expectAllRan(count, aesGcmFile.numberOfTests, failures);
    });
  });

  it('HKDF-SHA-256: hkdf gives every okm and refuses outputs over 255 * 32 bytes (RFC 5869 §2.3)', () => {
    const count = newCount('hkdf_sha256_test.json');
    const failures: string[] = [];
    for (const group of hkdfFile.testGroups) {
      for (const t of group.tests) {
        count.add(t.result);
        const [ikm, salt, info] = [fromHex(t.ikm), fromHex(t.salt), fromHex(t.info)];
        if (t.result === 'valid') {
          if (toHex(hkdf(ikm, salt, info, t.size)) !== t.okm) failures.push(`${describeTest(t)}: wrong okm`);
          if (salt.length === 0 && toHex(hkdf(ikm, undefined, info, t.size)) !== t.okm) {
            failures.push(`${describeTest(t)}: an absent salt differs from an empty one`);
          }
        } else if (t.result === 'invalid') {
          const err = errorOf(() => hkdf(ikm, salt, info, t.size));
          if (!CryptoError.is(err, CryptoErrorCode.MalformedInput)) {
            failures.push(`${describeTest(t)}: output size ${t.size} not refused as malformed`);
          }
        } else {
          failures.push(noAcceptable(t));
        }
      }
    }
    expectAllRan(count, hkdfFile.numberOfTests, failures);
  });

  it('HMAC-SHA-256: hmacSha256 gives every tag and no modified tag matches (RFC 2104)', () => {
    const count = newCount('hmac_sha256_test.json');
    const failures: string[] = [];
    for (const group of hmacFile.testGroups) {
      const tagBytes = group.tagSize / 8;
      for (const t of group.tests) {
        count.add(t.result);
        const tag = hmacSha256(fromHex(t.key), fromHex(t.msg)).subarray(0, tagBytes);
        const matches = bytesEqual(tag, fromHex(t.tag));
        if (t.result === 'valid' && !matches) failures.push(`${describeTest(t)}: wrong tag`);
        else if (t.result === 'invalid' && matches)
          failures.push(`${describeTest(t)}: a modified tag matched`);
        else if (t.result === 'acceptable') failures.push(noAcceptable(t));
      }
    }
    expectAllRan(count, hmacFile.numberOfTests, failures);
  });

  it('ML-KEM-768: key generation from d || z and decapsulation (FIPS 203 §6.1, §7.3)', () => {
    const count = newCount('mlkem_768_test.json');
    const failures: string[] = [];
    for (const group of mlkemFile.testGroups) {
      for (const t of group.tests) {
        count.add(t.result);
        const [seed, c] = [fromHex(t.seed), fromHex(t.c)];
        if (t.result === 'acceptable') {
          failures.push(noAcceptable(t));
          continue;
        }
        if (t.result === 'invalid' && seed.length !== 64) {
          const err = errorOf(() => mlkem768KeyPairFromSeed(seed));
          if (!CryptoError.is(err, CryptoErrorCode.MalformedInput)) {
            failures.push(`${describeTest(t)}: a ${seed.length}-byte seed was not refused as malformed`);
          }
          continue;
        }
        const keyPair = mlkem768KeyPairFromSeed(seed);
        if (t.ek !== undefined && toHex(keyPair.publicKey) !== t.ek) {
          failures.push(`${describeTest(t)}: the seed gave another ek`);
        }
        if (t.result === 'valid') {
          if (toHex(mlkem768Decapsulate(keyPair.secretKey, c)) !== t.K) {
            failures.push(`${describeTest(t)}: wrong shared secret`);
          }
        } else if (c.length !== 1088) {
          const err = errorOf(() => mlkem768Decapsulate(keyPair.secretKey, c));
          if (!CryptoError.is(err, CryptoErrorCode.MalformedInput)) {
            failures.push(`${describeTest(t)}: a ${c.length}-byte ciphertext was not refused as malformed`);
          }
        } else {
          // Implicit rejection (FIPS 203 §6.3) makes every well-formed ciphertext decapsulate.
          failures.push(`${describeTest(t)}: no rule for an invalid vector with well-formed lengths`);
        }
      }
    }
    expectAllRan(count, mlkemFile.numberOfTests, failures);
  });

  it('ML-KEM-768: deterministic encapsulation and the input checks of FIPS 203 §7.2', () => {
    const count = newCount('mlkem_768_encaps_test.json');
    const failures: string[] = [];
    let modulusRefused = 0;
    for (const group of mlkemEncapsFile.testGroups) {
      for (const t of group.tests) {
        count.add(t.result);
        const [ek, m] = [fromHex(t.ek), fromHex(t.m)];
        if (t.result === 'valid') {
          const { ciphertext, sharedSecret } = mlkem768EncapsulateDeterministic(ek, m);
          if (toHex(ciphertext) !== t.c || toHex(sharedSecret) !== t.K) {
            failures.push(`${describeTest(t)}: wrong ciphertext or shared secret`);
          }
        } else if (t.result === 'invalid') {
          const code = ek.length === 1184 ? CryptoErrorCode.InvalidKey : CryptoErrorCode.MalformedInput;
          if (code === CryptoErrorCode.InvalidKey) modulusRefused++;
          const errs = [
            errorOf(() => mlkem768EncapsulateDeterministic(ek, m)),
            errorOf(() => mlkem768Encapsulate(ek)),
          ];
          if (!errs.every((err) => CryptoError.is(err, code))) {
            failures.push(`${describeTest(t)} [${t.flags.join(',')}]: not refused with ${code}`);
          }
        } else {
          failures.push(noAcceptable(t));
        }
      }
    }
    expect(modulusRefused).toBeGreaterThan(0);
    expectAllRan(count, mlkemEncapsFile.numberOfTests, failures);
  });
});
