/**
 * The root chain: Signal's Double Ratchet specification §3.3 (Diffie-Hellman ratchet) and
 * §4 (header encryption variant), with §5.2's recommended KDF_RK: HKDF-SHA-256 with the root key
 * as salt and the DH output as input key material. With header encryption (§4.2 KDF_RK_HE)
 * the output is 96 bytes: new root key, chain key, next header key.
 */
import { assertBytes, wipe } from '../bytes.js';
import { hkdf } from '../hkdf.js';
import { ReceivingChainKey, SendingChainKey } from './chain-key.js';
import { ROOT_KDF_INFO } from './kdf-labels.js';

export const ROOT_KEY_BYTES = 32;

export interface RootStep<C> {
  readonly rootKey: RootKey;
  readonly chainKey: C;
  readonly nextHeaderKey: Uint8Array;
}

export class RootKey {
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    assertBytes(bytes, ROOT_KEY_BYTES, 'root key');
    this.#bytes = bytes;
  }

  /** KDF_RK_HE for our own new ratchet key: the chain it yields is a sending chain. */
  advanceSending(dhOutput: Uint8Array): RootStep<SendingChainKey> {
    const [rk, ck, nhk] = this.#kdf(dhOutput);
    return { rootKey: new RootKey(rk), chainKey: new SendingChainKey(ck, 0), nextHeaderKey: nhk };
  }

  /** KDF_RK_HE for the peer's new ratchet key: the chain it yields is a receiving chain. */
  advanceReceiving(dhOutput: Uint8Array): RootStep<ReceivingChainKey> {
    const [rk, ck, nhk] = this.#kdf(dhOutput);
    return { rootKey: new RootKey(rk), chainKey: new ReceivingChainKey(ck, 0), nextHeaderKey: nhk };
  }

  #kdf(dhOutput: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
    assertBytes(dhOutput, 32, 'DH output');
    const okm = hkdf(dhOutput, this.#bytes, ROOT_KDF_INFO, 96);
    const parts: [Uint8Array, Uint8Array, Uint8Array] = [
      okm.slice(0, 32),
      okm.slice(32, 64),
      okm.slice(64, 96),
    ];
    wipe(okm);
    return parts;
  }

  /** The raw key, for pickling only. */
  exportBytes(): Uint8Array {
    return this.#bytes.slice();
  }

  wipe(): void {
    wipe(this.#bytes);
  }

  toJSON(): string {
    return 'RootKey(redacted)';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}
