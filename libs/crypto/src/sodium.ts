/**
 * The libsodium (WASM) instance. `ready()` loads it once; every synchronous primitive after
 * that reaches it through `sodium()`, which refuses clearly when `ready()` was not awaited.
 */
import libsodium from 'libsodium-wrappers-sumo';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { loadDefaultAesGcm } from './aes-gcm.js';
import { loadDefaultX25519 } from './x25519.js';

export type Sodium = typeof libsodium;

let loaded: Sodium | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads the WASM modules and picks the platform backends of AES-256-GCM and X25519 (node:crypto
 * in Node; WebCrypto and libsodium in browsers). Idempotent; await it once
 * at start-up, after which the synchronous primitives may be called.
 *
 * @example
 * import { ready, generateIdentityKeyPair } from '@usm/crypto';
 * await ready();
 * const alice = generateIdentityKeyPair();
 */
export function ready(): Promise<void> {
  loading ??= (async () => {
    await libsodium.ready;
    await loadDefaultAesGcm();
    await loadDefaultX25519(libsodium);
    loaded = libsodium;
  })();
  return loading;
}

/** The loaded libsodium; throws NOT_READY before `ready()` resolved. */
export function sodium(): Sodium {
  if (!loaded) {
    throw new CryptoError(
      CryptoErrorCode.NotReady,
      'the crypto core is not loaded: await ready() once before using it',
    );
  }
  return loaded;
}
