/**
 * Symmetric-key ratchet: Signal's Double Ratchet specification §2.2, with §5.2's KDF_CK:
 * MK = HMAC-SHA-256(CK, 0x01), CK' = HMAC-SHA-256(CK, 0x02).
 *
 * Chain keys are immutable: a step returns the next chain key and leaves this one as it was,
 * so a decryption that fails part-way has changed nothing. Sending and receiving chain keys are
 * distinct types (as vodozemac's ChainKey / RemoteChainKey): one cannot stand for the other.
 */
import { assertBytes, wipe } from '../bytes.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';
import { hmacSha256 } from '../hkdf.js';
import { MessageKey } from '../encryption.js';
import { CHAIN_KDF_MESSAGE_KEY_INPUT, CHAIN_KDF_NEXT_CHAIN_KEY_INPUT } from './kdf-labels.js';
import { MAX_CHAIN_INDEX, MAX_SKIP } from './limits.js';

export const CHAIN_KEY_BYTES = 32;

abstract class ChainKey {
  protected readonly key: Uint8Array;

  constructor(
    key: Uint8Array,
    /** The index of the next message key this chain yields (Ns or Nr of the spec). */
    readonly index: number,
  ) {
    assertBytes(key, CHAIN_KEY_BYTES, 'chain key');
    this.key = key;
  }

  /** KDF_CK: the message key at `index` and the raw next chain key. */
  protected kdf(): [MessageKey, Uint8Array] {
    if (this.index >= MAX_CHAIN_INDEX) {
      throw new CryptoError(
        CryptoErrorCode.LimitExceeded,
        `chain: message index ${this.index} is the last one a chain allows`,
      );
    }
    return [
      new MessageKey(hmacSha256(this.key, CHAIN_KDF_MESSAGE_KEY_INPUT), this.index),
      hmacSha256(this.key, CHAIN_KDF_NEXT_CHAIN_KEY_INPUT),
    ];
  }

  /** The raw key, for pickling only. */
  exportBytes(): Uint8Array {
    return this.key.slice();
  }

  wipe(): void {
    wipe(this.key);
  }

  toJSON(): string {
    return `${this.constructor.name}(#${this.index})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

export class SendingChainKey extends ChainKey {
  declare private readonly sendingBrand: never;

  /** One step of the sending chain: the message key for `index` and the next chain key. */
  next(): { messageKey: MessageKey; chainKey: SendingChainKey } {
    const [messageKey, next] = this.kdf();
    return { messageKey, chainKey: new SendingChainKey(next, this.index + 1) };
  }
}

export interface ReceivingAdvance {
  /** Keys of the messages between `index` and the target, to store as skipped. */
  readonly skipped: MessageKey[];
  /** The key of the target message. */
  readonly messageKey: MessageKey;
  /** The chain key after the target message. */
  readonly chainKey: ReceivingChainKey;
}

export class ReceivingChainKey extends ChainKey {
  declare private readonly receivingBrand: never;

  /**
   * Advances to message `target` (>= index), as SkipMessageKeysHE then KDF_CK of the spec.
   * Throws JUMP_TOO_LARGE past MAX_SKIP; this chain key is unchanged either way.
   */
  advanceTo(target: number): ReceivingAdvance {
    assertSkipWithinLimit(this.index, target);
    const skipped: MessageKey[] = [];
    // Walk on copies: this chain key stays as it was, so a failed decryption changes nothing.
    let chain = new ReceivingChainKey(this.key.slice(), this.index);
    while (chain.index < target) {
      const [mk, next] = chain.kdf();
      skipped.push(mk);
      chain.wipe();
      chain = new ReceivingChainKey(next, chain.index + 1);
    }
    const [messageKey, next] = chain.kdf();
    chain.wipe();
    return { skipped, messageKey, chainKey: new ReceivingChainKey(next, target + 1) };
  }

  /** SkipMessageKeysHE(until) on its own: the keys of messages index..until-1 (the old chain's tail). */
  skipUntil(until: number): MessageKey[] {
    if (until <= this.index) return [];
    assertSkipWithinLimit(this.index, until);
    const { skipped, messageKey, chainKey } = this.advanceTo(until - 1);
    chainKey.wipe();
    return [...skipped, messageKey];
  }
}

/** Signal spec §3.5: refuse to derive more than MAX_SKIP keys for one header. */
export function assertSkipWithinLimit(from: number, to: number): void {
  if (to - from > MAX_SKIP) {
    throw new CryptoError(
      CryptoErrorCode.JumpTooLarge,
      `ratchet: message ${to} is ${to - from} ahead of the next expected (${from}); at most ${MAX_SKIP} may be skipped`,
    );
  }
}
