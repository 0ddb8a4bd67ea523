/**
 * AES-256-GCM (NIST SP 800-38D) from the platform, never from WASM: libsodium's WASM build has
 * no AES-GCM (WebAssembly has no AES-NI). Two backends behind one interface:
 *  - node:crypto in Node (synchronous OpenSSL underneath, about 12x the throughput of WebCrypto);
 *  - WebCrypto (`crypto.subtle`) in browsers.
 * `ready()` picks node:crypto when running in Node and WebCrypto elsewhere.
 *
 * This is the raw primitive and takes an IV from its caller. Protocol code never calls it with
 * an IV of its own choosing: it goes through `encryption.ts`, which makes nonce reuse
 * impossible by construction (see there). IVs other than 96 bits and tags other than 128 bits
 * are refused here, whatever the backend would accept.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';

export const AES_256_KEY_BYTES = 32;
/** SP 800-38D §5.2.1.1: 96-bit IVs are the only length used without GHASH-derived counters. */
export const GCM_IV_BYTES = 12;
/** Full-length 128-bit tags only (SP 800-38D §5.2.1.2 allows truncation; we never do). */
export const GCM_TAG_BYTES = 16;

export interface AesGcmBackend {
  /** 'node:crypto' or 'webcrypto'. */
  readonly name: string;
  /** Returns ciphertext || 16-byte tag. */
  encrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Takes ciphertext || 16-byte tag; throws BAD_MAC when the tag does not verify. */
  decrypt(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
}

function checkInputs(
  key: Uint8Array,
  iv: Uint8Array,
  what: 'plaintext' | 'sealed',
  data: Uint8Array,
  aad: Uint8Array,
) {
  // Input checks live here, not in each backend, so every backend refuses the same inputs.
  const fail = (msg: string) => new CryptoError(CryptoErrorCode.MalformedInput, `aes-256-gcm: ${msg}`);
  if (!(key instanceof Uint8Array) || key.length !== AES_256_KEY_BYTES)
    throw fail(
      `key: expected ${AES_256_KEY_BYTES} bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`,
    );
  if (!(iv instanceof Uint8Array) || iv.length !== GCM_IV_BYTES)
    throw fail(`iv: expected ${GCM_IV_BYTES} bytes, got ${iv instanceof Uint8Array ? iv.length : typeof iv}`);
  if (!(data instanceof Uint8Array)) throw fail(`${what}: expected a Uint8Array`);
  if (!(aad instanceof Uint8Array)) throw fail('associated data: expected a Uint8Array');
  if (what === 'sealed' && data.length < GCM_TAG_BYTES)
    throw fail(`sealed: expected at least a ${GCM_TAG_BYTES}-byte tag, got ${data.length} bytes`);
}

const badMac = () =>
  new CryptoError(CryptoErrorCode.BadMac, 'aes-256-gcm: authentication tag does not verify');

/**
 * The slice of node:crypto this backend uses, typed here so that the published declarations do
 * not pull in @types/node (a browser app compiles against them too).
 */
export interface NodeCryptoGcm {
  createCipheriv(
    algorithm: 'aes-256-gcm',
    key: Uint8Array,
    iv: Uint8Array,
    options: { authTagLength: number },
  ): {
    setAAD(aad: Uint8Array): unknown;
    update(data: Uint8Array): Uint8Array;
    final(): Uint8Array;
    getAuthTag(): Uint8Array;
  };
  createDecipheriv(
    algorithm: 'aes-256-gcm',
    key: Uint8Array,
    iv: Uint8Array,
    options: { authTagLength: number },
  ): {
    setAAD(aad: Uint8Array): unknown;
    setAuthTag(tag: Uint8Array): unknown;
    update(data: Uint8Array): Uint8Array;
    final(): Uint8Array;
  };
}
type NodeCrypto = NodeCryptoGcm;

/** The node:crypto (OpenSSL) backend. */
export function createNodeAesGcm(nodeCrypto: NodeCrypto): AesGcmBackend {
  const { createCipheriv, createDecipheriv } = nodeCrypto;
  return {
    name: 'node:crypto',
    async encrypt(key, iv, plaintext, aad) {
      checkInputs(key, iv, 'plaintext', plaintext, aad);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
      cipher.setAAD(aad);
      const head = cipher.update(plaintext);
      const tail = cipher.final();
      const tag = cipher.getAuthTag();
      const out = new Uint8Array(head.length + tail.length + GCM_TAG_BYTES);
      out.set(head, 0);
      out.set(tail, head.length);
      out.set(tag, head.length + tail.length);
      return out;
    },
    async decrypt(key, iv, sealed, aad) {
      checkInputs(key, iv, 'sealed', sealed, aad);
      const split = sealed.length - GCM_TAG_BYTES;
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(split));
      const head = decipher.update(sealed.subarray(0, split));
      let tail: Uint8Array;
      try {
        tail = decipher.final();
      } catch {
        head.fill(0); // unauthenticated plaintext never leaves
        throw badMac();
      }
      const out = new Uint8Array(head.length + tail.length);
      out.set(head, 0);
      out.set(tail, head.length);
      head.fill(0);
      return out;
    },
  };
}

/** The WebCrypto backend (browsers; also available in Node 20 as `globalThis.crypto.subtle`). */
export function createWebCryptoAesGcm(subtle: SubtleCrypto = globalThis.crypto.subtle): AesGcmBackend {
  const importKey = (key: Uint8Array, usage: KeyUsage) =>
    subtle.importKey('raw', key as BufferSource, { name: 'AES-GCM' }, false, [usage]);
  return {
    name: 'webcrypto',
    async encrypt(key, iv, plaintext, aad) {
      checkInputs(key, iv, 'plaintext', plaintext, aad);
      const k = await importKey(key, 'encrypt');
      const params = {
        name: 'AES-GCM',
        iv: iv as BufferSource,
        additionalData: aad as BufferSource,
        tagLength: 128,
      };
      return new Uint8Array(await subtle.encrypt(params, k, plaintext as BufferSource));
    },
    async decrypt(key, iv, sealed, aad) {
      checkInputs(key, iv, 'sealed', sealed, aad);
      const k = await importKey(key, 'decrypt');
      const params = {
        name: 'AES-GCM',
        iv: iv as BufferSource,
        additionalData: aad as BufferSource,
        tagLength: 128,
      };
      try {
        return new Uint8Array(await subtle.decrypt(params, k, sealed as BufferSource));
      } catch {
        throw badMac();
      }
    },
  };
}

let current: AesGcmBackend | undefined;

/** Called by `ready()`: node:crypto when in Node, WebCrypto otherwise. */
export async function loadDefaultAesGcm(): Promise<void> {
  if (current) return;
  const host = globalThis as { process?: { versions?: { node?: unknown } } };
  const isNode = typeof host.process?.versions?.node === 'string';
  if (isNode) {
    // A computed specifier keeps browser bundlers from trying to resolve node:crypto.
    const specifier = 'node:crypto';
    current = createNodeAesGcm((await import(/* @vite-ignore */ specifier)) as NodeCrypto);
  } else {
    current = createWebCryptoAesGcm();
  }
}

/** The backend in use. */
export function aesGcm(): AesGcmBackend {
  if (!current) {
    throw new CryptoError(
      CryptoErrorCode.NotReady,
      'no AES-256-GCM backend: await ready() once before using it',
    );
  }
  return current;
}

/** Replaces the backend (for tests and for hosts with their own platform AES). */
export function setAesGcmBackend(backend: AesGcmBackend): void {
  current = backend;
}
