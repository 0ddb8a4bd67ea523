/**
 * Typed keys and their versioned encodings.
 *
 * A key's type lives in its class: an X25519 public key cannot be passed where an Ed25519
 * identity key is expected. On the wire and in pickles every key is
 * `version (1 byte) | type (1 byte) | raw key bytes`, so an encoding of one type is refused
 * where another is expected, and a future format can be told apart.
 *
 * Secret keys never print: `toJSON` and Node's inspect hook show only the type and the public
 * key's short fingerprint (a test pins this output).
 */
import { assertBytes, toHex } from './bytes.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { sodium } from './sodium.js';

/** Version byte of every key encoding. */
export const KEY_ENCODING_VERSION = 1;

/** Type byte of a key encoding. */
export enum KeyType {
  /** Ed25519 identity key (RFC 8032). */
  Ed25519 = 0x01,
  /** X25519 Diffie-Hellman key (RFC 7748). */
  X25519 = 0x02,
  /** X-Wing hybrid KEM key: ML-KEM-768 + X25519 (draft-connolly-cfrg-xwing-kem). */
  XWing = 0x03,
}

/** Raw public key sizes. */
export const PUBLIC_KEY_BYTES: Record<KeyType, number> = {
  [KeyType.Ed25519]: 32,
  [KeyType.X25519]: 32,
  [KeyType.XWing]: 1216,
};
/** Raw secret key sizes (Ed25519: libsodium's seed || public; X-Wing: the 32-byte seed). */
export const SECRET_KEY_BYTES: Record<KeyType, number> = {
  [KeyType.Ed25519]: 64,
  [KeyType.X25519]: 32,
  [KeyType.XWing]: 32,
};

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** A short public fingerprint: the first 8 bytes of BLAKE2b-256 of the public key, in hex. */
export function shortFingerprint(publicKey: Uint8Array): string {
  return toHex(sodium().crypto_generichash(32, publicKey, null).subarray(0, 8));
}

abstract class PublicKeyBase<T extends KeyType> {
  /** The raw key bytes (not a copy: do not modify). */
  readonly bytes: Uint8Array;

  protected constructor(
    readonly type: T,
    bytes: Uint8Array,
  ) {
    assertBytes(bytes, PUBLIC_KEY_BYTES[type], `${KeyType[type]} public key`);
    this.bytes = bytes;
  }

  /** `version | type | key`. */
  encode(): Uint8Array {
    const out = new Uint8Array(2 + this.bytes.length);
    out[0] = KEY_ENCODING_VERSION;
    out[1] = this.type;
    out.set(this.bytes, 2);
    return out;
  }

  equals(other: PublicKeyBase<KeyType>): boolean {
    return other.type === this.type && sodium().memcmp(other.bytes, this.bytes);
  }

  fingerprint(): string {
    return shortFingerprint(this.bytes);
  }

  toJSON(): string {
    return `${KeyType[this.type]}PublicKey(${this.fingerprint()})`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspectSymbol](): string {
    return this.toJSON();
  }
}

/** An Ed25519 public identity key. */
export class IdentityPublicKey extends PublicKeyBase<KeyType.Ed25519> {
  constructor(bytes: Uint8Array) {
    super(KeyType.Ed25519, bytes);
  }
  static decode(encoded: Uint8Array): IdentityPublicKey {
    return new IdentityPublicKey(decodeKey(encoded, KeyType.Ed25519, PUBLIC_KEY_BYTES, 'public'));
  }
}

/** An X25519 public key. */
export class X25519PublicKey extends PublicKeyBase<KeyType.X25519> {
  constructor(bytes: Uint8Array) {
    super(KeyType.X25519, bytes);
  }
  static decode(encoded: Uint8Array): X25519PublicKey {
    return new X25519PublicKey(decodeKey(encoded, KeyType.X25519, PUBLIC_KEY_BYTES, 'public'));
  }
}

/** An X-Wing KEM public (encapsulation) key. */
export class KemPublicKey extends PublicKeyBase<KeyType.XWing> {
  constructor(bytes: Uint8Array) {
    super(KeyType.XWing, bytes);
  }
  static decode(encoded: Uint8Array): KemPublicKey {
    return new KemPublicKey(decodeKey(encoded, KeyType.XWing, PUBLIC_KEY_BYTES, 'public'));
  }
}

/**
 * A secret key of one type, kept beside its public key so that it can describe itself without
 * revealing anything. `bytes` is the only way to the secret; `wipe()` zeroes it.
 */
export class SecretKey<T extends KeyType> {
  readonly #bytes: Uint8Array;

  constructor(
    readonly type: T,
    bytes: Uint8Array,
    private readonly publicBytes: Uint8Array,
  ) {
    assertBytes(bytes, SECRET_KEY_BYTES[type], `${KeyType[type]} secret key`);
    this.#bytes = bytes;
  }

  /** The raw secret (not a copy). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** `version | type | secret`, for pickles only (which are encrypted at rest by their owner). */
  encode(): Uint8Array {
    const out = new Uint8Array(2 + this.#bytes.length);
    out[0] = KEY_ENCODING_VERSION;
    out[1] = this.type;
    out.set(this.#bytes, 2);
    return out;
  }

  wipe(): void {
    sodium().memzero(this.#bytes);
  }

  toJSON(): string {
    return `${KeyType[this.type]}SecretKey(public ${shortFingerprint(this.publicBytes)})`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspectSymbol](): string {
    return this.toJSON();
  }
}

/** Checks `version | type | key` and returns a copy of the key bytes. */
export function decodeKey(
  encoded: Uint8Array,
  type: KeyType,
  sizes: Record<KeyType, number>,
  kind: 'public' | 'secret',
): Uint8Array {
  const name = `${KeyType[type]} ${kind} key encoding`;
  assertBytes(encoded, undefined, name);
  const want = 2 + sizes[type];
  if (encoded.length !== want) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `${name}: expected ${want} bytes, got ${encoded.length}`,
    );
  }
  if (encoded[0] !== KEY_ENCODING_VERSION) {
    throw new CryptoError(
      CryptoErrorCode.MalformedInput,
      `${name}: expected version ${KEY_ENCODING_VERSION}, got ${encoded[0]}`,
    );
  }
  if (encoded[1] !== type) {
    const got = KeyType[encoded[1] as KeyType] ?? `unknown type ${encoded[1]}`;
    throw new CryptoError(CryptoErrorCode.InvalidKey, `${name}: expected a ${KeyType[type]} key, got ${got}`);
  }
  return encoded.slice(2);
}
