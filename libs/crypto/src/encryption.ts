/**
 * AES-256-GCM with nonce reuse made impossible by construction. GCM loses confidentiality and
 * integrity if a (key, IV) pair is ever used twice (SP 800-38D §8 and Appendix A), so protocol
 * code never chooses an IV. It has two ways to encrypt:
 *
 *  1. `sealWithMessageKey(mk, ...)`: for one-time keys (Double Ratchet message keys). The AES key
 *     and the IV are both derived from the message key with HKDF (Signal spec §5.2 ENCRYPT).
 *     A MessageKey object is consumed by the call (wiped, then refused if used again), and every
 *     message key comes from a distinct chain step, so each derived (key, IV) pair is used once.
 *  2. `sealWithRandomNonce(key, ...)`: for keys that encrypt many times (header keys, keys at
 *     rest). A fresh random 96-bit nonce per call, sent in front of the ciphertext. This is
 *     SP 800-38D §8.2.2's RBG-based construction, whose bound (2^32 invocations per key) no
 *     header key or storage key comes near: a sending chain carries at most 2^32 - 1 messages.
 *
 * The one hazard left is outside this module: restoring an old ratchet state (a rollback) and
 * sending from it derives the same message key again. Callers persist the advanced state before
 * the ciphertext leaves (the client's outbox does).
 */
import { aesGcm, GCM_IV_BYTES, GCM_TAG_BYTES } from './aes-gcm.js';
import { assertBytes, concatBytes, randomBytes, wipe } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { hkdf } from './hkdf.js';
import { MESSAGE_KEY_INFO } from './ratchet/kdf-labels.js';

export const MESSAGE_KEY_BYTES = 32;
const ZERO_SALT = new Uint8Array(32);

/**
 * A one-time message key. It can be used exactly once, then it is wiped; a second use throws
 * DUPLICATE_MESSAGE. It never prints.
 */
export class MessageKey {
  #bytes: Uint8Array | undefined;

  constructor(
    bytes: Uint8Array,
    /** The chain index it belongs to (public). */
    readonly index: number,
  ) {
    assertBytes(bytes, MESSAGE_KEY_BYTES, 'message key');
    this.#bytes = bytes;
  }

  /** Hands out the key bytes once and forgets them; the caller wipes them. */
  take(): Uint8Array {
    const bytes = this.#bytes;
    if (!bytes)
      throw new CryptoError(CryptoErrorCode.DuplicateMessage, `message key ${this.index} was already used`);
    this.#bytes = undefined;
    return bytes;
  }

  /** A copy of the bytes without consuming the key (pickling skipped keys). */
  peek(): Uint8Array {
    if (!this.#bytes)
      throw new CryptoError(CryptoErrorCode.DuplicateMessage, `message key ${this.index} was already used`);
    return this.#bytes.slice();
  }

  get used(): boolean {
    return this.#bytes === undefined;
  }

  /** Wipes the key without using it (eviction, failed decryption of a copy). */
  discard(): void {
    if (this.#bytes) wipe(this.#bytes);
    this.#bytes = undefined;
  }

  /** Same as `discard()`, so a MessageKey retires like any other secret. */
  wipe(): void {
    this.discard();
  }

  toJSON(): string {
    return `MessageKey(#${this.index})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

function deriveKeyAndIv(mk: MessageKey): { key: Uint8Array; iv: Uint8Array } {
  const raw = mk.take();
  try {
    const okm = hkdf(raw, ZERO_SALT, MESSAGE_KEY_INFO, 32 + GCM_IV_BYTES);
    return { key: okm.subarray(0, 32), iv: okm.subarray(32) };
  } finally {
    wipe(raw);
  }
}

/** Encrypts with a one-time message key (consumed). Output: ciphertext | tag. */
export async function sealWithMessageKey(
  mk: MessageKey,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Promise<Uint8Array> {
  const { key, iv } = deriveKeyAndIv(mk);
  try {
    return await aesGcm().encrypt(key, iv, plaintext, ad);
  } finally {
    wipe(key, iv);
  }
}

/** Decrypts with a one-time message key (consumed, whatever the outcome). */
export async function openWithMessageKey(
  mk: MessageKey,
  sealed: Uint8Array,
  ad: Uint8Array,
): Promise<Uint8Array> {
  const { key, iv } = deriveKeyAndIv(mk);
  try {
    return await aesGcm().decrypt(key, iv, sealed, ad);
  } finally {
    wipe(key, iv);
  }
}

/** Bytes `sealWithRandomNonce` adds to a plaintext. */
export const RANDOM_NONCE_OVERHEAD = GCM_IV_BYTES + GCM_TAG_BYTES;

/** The nonce's RBG (SP 800-38D §8.2.2): the platform CSPRNG (bytes.ts randomBytes). */
function randomNonce(): Uint8Array {
  return randomBytes(GCM_IV_BYTES);
}

/** Encrypts under a reusable key with a fresh random 96-bit nonce. Output: nonce | ciphertext | tag. */
export async function sealWithRandomNonce(
  key: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Promise<Uint8Array> {
  const nonce = randomNonce();
  return concatBytes(nonce, await aesGcm().encrypt(key, nonce, plaintext, ad));
}

/** Opens `nonce | ciphertext | tag`; BAD_MAC when it does not verify. */
export async function openWithRandomNonce(
  key: Uint8Array,
  sealed: Uint8Array,
  ad: Uint8Array,
): Promise<Uint8Array> {
  assertBytes(sealed, undefined, 'sealed data');
  if (sealed.length < RANDOM_NONCE_OVERHEAD) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `sealed data: expected at least ${RANDOM_NONCE_OVERHEAD} bytes, got ${sealed.length}`,
    );
  }
  return aesGcm().decrypt(key, sealed.subarray(0, GCM_IV_BYTES), sealed.subarray(GCM_IV_BYTES), ad);
}
