/**
 * Safety numbers: the digits two people compare to check that each holds the other's real
 * identity key. Same construction as libsignal's NumericFingerprint (version 0):
 *
 *   per party: h = SHA-512(0x0000 | key | stableId); repeat `iterations` times h = SHA-512(h | key);
 *              take the first 30 bytes as six 5-byte big-endian numbers, each mod 100000 -> 30 digits
 *   safety number: the two 30-digit strings, the smaller first, so both sides compute the same 60 digits.
 *
 * `key` is our versioned identity key encoding; 5,200 iterations is libsignal's figure, which
 * makes a second-preimage search for a 30-digit half cost 2^112-ish hash calls.
 */
import { assertBytes, concatBytes } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { IdentityPublicKey } from './keys.js';
import { sodium } from './sodium.js';

/** libsignal's iteration count for NumericFingerprint. */
export const FINGERPRINT_ITERATIONS = 5200;
const FINGERPRINT_VERSION = Uint8Array.of(0, 0);

/** One party's 30 digits, from a serialized key and a stable identifier (e.g. the account id). */
export function fingerprintDigits(
  serializedKey: Uint8Array,
  stableId: Uint8Array,
  iterations = FINGERPRINT_ITERATIONS,
): string {
  assertBytes(serializedKey, undefined, 'fingerprint key');
  assertBytes(stableId, undefined, 'fingerprint identifier');
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `fingerprint: iterations must be a positive integer, got ${iterations}`,
    );
  }
  const s = sodium();
  let hash = s.crypto_hash_sha512(concatBytes(FINGERPRINT_VERSION, serializedKey, stableId));
  for (let i = 0; i < iterations; i++) hash = s.crypto_hash_sha512(concatBytes(hash, serializedKey));
  let digits = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let value = 0;
    // 5 bytes fit a double exactly (40 bits < 53)
    for (let j = 0; j < 5; j++) value = value * 256 + hash[chunk * 5 + j]!;
    digits += String(value % 100000).padStart(5, '0');
  }
  return digits;
}

export interface SafetyNumberParty {
  readonly identityKey: IdentityPublicKey;
  /** A stable identifier of the party (its account or address), as bytes or UTF-8 text. */
  readonly stableId: Uint8Array | string;
}

/**
 * The 60-digit safety number of two identities; both sides get the same digits.
 *
 * @example
 * const digits = safetyNumber({ identityKey: alice.publicKey, stableId: 'alice' },
 *                             { identityKey: bob.publicKey, stableId: 'bob' });
 * formatSafetyNumber(digits); // '12345 67890 ...' (12 groups of five)
 */
export function safetyNumber(local: SafetyNumberParty, remote: SafetyNumberParty): string {
  const half = (p: SafetyNumberParty) =>
    fingerprintDigits(
      p.identityKey.encode(),
      typeof p.stableId === 'string' ? new TextEncoder().encode(p.stableId) : p.stableId,
    );
  const a = half(local);
  const b = half(remote);
  return a <= b ? a + b : b + a;
}

/** Groups of five digits, as people read them out. */
export function formatSafetyNumber(digits: string): string {
  return digits.replace(/(\d{5})(?=\d)/g, '$1 ');
}
