/**
 * The owner's side of prekeys (PQXDH revision 3, §3.2 "Publishing keys", §3.4 "Receiving the
 * initial message"): generates the prekeys Bob publishes, keeps their private halves by id,
 * deletes a one-time prekey once a session set up with it has authenticated (§3.4: "Bob deletes
 * any one-time prekey private key that was used, for forward secrecy"), rotates the signed and
 * last-resort prekeys (§3.2: "Bob will upload a new signed prekey ... at some interval") keeping
 * MAX_SIGNED_PREKEYS_KEPT of each for mail still in flight, and pickles it all for storage.
 *
 * Ids are u32 counters per kind (one counter for both KEM kinds), starting at a random value so
 * that a store restored from an old backup is unlikely to reuse ids the relay still holds;
 * PQXDH §4.13 (key identifiers): an id names exactly one key of its kind in this store.
 *
 * The identity's secret stays with the caller: the store signs with the identity it was made
 * with, and a pickle holds only the identity's public key, checked when it is loaded.
 *
 * Pickle body (big-endian), version 1:
 *   version u8 | identity public key (32) | next signed id u32 | next KEM id u32 | next one-time id u32
 *   | signed count u8 | { id u32 | createdAt u64 | secret (32) | signature (64) } ...
 *   | last-resort KEM count u8 | { id u32 | createdAt u64 | seed (32) | signature (64) } ...
 *   | one-time KEM count u16 | { id u32 | seed (32) | signature (64) } ...
 *   | one-time count u16 | { id u32 | secret (32) } ...
 * Public keys are recomputed from the secrets; signatures are kept as signed.
 *
 * Over 400 lines on purpose: generation, rotation, consumption and the pickle all work on the
 * same four key lists and their counters; the record codecs live in prekeys.ts.
 */
import {
  type IdentityKeyPair,
  type KemKeyPair,
  type X25519KeyPair,
  IdentityPublicKey,
  generateKemKeyPair,
  generateX25519KeyPair,
  kemKeyPairFromSecret,
  randomBytes,
  sign,
  wipe,
  x25519KeyPairFromSecret,
} from '@usm/crypto';
import { BinaryReader, BinaryWriter } from '../encoding/binary-reader.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import type { Clock } from '../handshake/clock.js';
import { MAX_PREKEY_ID } from '../limits.js';
import { PREKEY_STORE_PICKLE_AD } from './kdf-labels.js';
import {
  MAX_ONE_TIME_PREKEYS_PER_BATCH,
  MAX_SIGNED_PREKEYS_KEPT,
  MAX_STORED_ONE_TIME_KEM_PREKEYS,
  MAX_STORED_ONE_TIME_PREKEYS,
} from './limits.js';
import { badPickle, openPickle, parsePickle, sealPickle } from './pickle.js';
import {
  type KemPrekey,
  type OneTimePrekey,
  type PrekeyPublication,
  type SignedPrekey,
  kemPrekeySignedData,
  signedPrekeySignedData,
} from './prekeys.js';

/** Version byte of the prekey store's pickle body. */
export const PREKEY_STORE_PICKLE_VERSION = 1;

interface StoredSignedPrekey {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
  readonly signature: Uint8Array;
  readonly createdAt: number;
}

interface StoredKemPrekey {
  readonly id: number;
  readonly keyPair: KemKeyPair;
  readonly signature: Uint8Array;
  readonly createdAt: number;
}

interface StoredOneTimePrekey {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
}

interface Counters {
  signed: number;
  kem: number;
  oneTime: number;
}

export interface PrekeyStoreOptions {
  /** The clock that stamps signed prekeys (for rotation by age). @default systemClock */
  readonly clock?: Clock;
}

const systemClock: Clock = { now: () => Date.now() };

function randomStartId(): number {
  const b = randomBytes(4);
  // 1 .. 2^31: far from the top, so a store wraps only after 2^31 keys of one kind.
  return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 1) + 1;
}

/**
 * An owner's prekeys and their private halves.
 *
 * @example
 * const store = PrekeyStore.create(identity);
 * store.generateOneTimePrekeys(100);
 * await socket.emitWithAck('prekeys:publish', publishRequestOf(store.publication()));
 * // later, on `prekeys:low`:
 * const fresh = store.generateOneTimePrekeys(100);
 * await socket.emitWithAck('prekeys:publish', publishRequestOf({ oneTimePrekeys: fresh }));
 * await saveEncrypted(await store.pickle(storageKey));
 */
export class PrekeyStore {
  readonly #identity: IdentityKeyPair;
  readonly #clock: Clock;
  readonly #next: Counters;
  /** Oldest first; the last is current. */
  #signed: StoredSignedPrekey[];
  /** Oldest first; the last is current. */
  #lastResort: StoredKemPrekey[];
  readonly #kemOneTime = new Map<number, StoredKemPrekey>();
  readonly #oneTime = new Map<number, StoredOneTimePrekey>();

  private constructor(
    identity: IdentityKeyPair,
    clock: Clock,
    next: Counters,
    signed: StoredSignedPrekey[],
    lastResort: StoredKemPrekey[],
  ) {
    this.#identity = identity;
    this.#clock = clock;
    this.#next = next;
    this.#signed = signed;
    this.#lastResort = lastResort;
  }

  /** A new store with a signed prekey and a last-resort KEM prekey (no one-time prekeys yet). */
  static create(identity: IdentityKeyPair, options: PrekeyStoreOptions = {}): PrekeyStore {
    const store = new PrekeyStore(
      identity,
      options.clock ?? systemClock,
      { signed: randomStartId(), kem: randomStartId(), oneTime: randomStartId() },
      [],
      [],
    );
    store.rotateSignedPrekey();
    store.rotateLastResortKemPrekey();
    return store;
  }

  /** The identity whose prekeys these are (its secret is needed by session setup's DH1/DH2). */
  get identity(): IdentityKeyPair {
    return this.#identity;
  }

  get identityKey(): IdentityPublicKey {
    return this.#identity.publicKey;
  }

  /** The current signed prekey, as published. */
  get signedPrekey(): SignedPrekey {
    return publicSigned(this.#signed.at(-1)!);
  }

  /** When the current signed prekey was made (ms since the epoch): rotate when it is old. */
  get signedPrekeyCreatedAt(): number {
    return this.#signed.at(-1)!.createdAt;
  }

  /** The current last-resort KEM prekey, as published. */
  get lastResortKemPrekey(): KemPrekey {
    return publicKem(this.#lastResort.at(-1)!, true);
  }

  /** Unused one-time X25519 prekeys held. */
  get oneTimePrekeyCount(): number {
    return this.#oneTime.size;
  }

  /** Unused one-time KEM prekeys held. */
  get oneTimeKemPrekeyCount(): number {
    return this.#kemOneTime.size;
  }

  /** Everything to publish: the current signed and last-resort prekeys and all unused one-time ones. */
  publication(): PrekeyPublication {
    return {
      identityKey: this.identityKey,
      signedPrekey: this.signedPrekey,
      lastResortKemPrekey: this.lastResortKemPrekey,
      oneTimeKemPrekeys: [...this.#kemOneTime.values()].map((p) => publicKem(p, false)),
      oneTimePrekeys: [...this.#oneTime.values()].map(publicOneTime),
    };
  }

  /**
   * Makes `count` (1..MAX_ONE_TIME_PREKEYS_PER_BATCH) one-time X25519 prekeys and returns them
   * to publish. TOO_LARGE when the store would then hold more than MAX_STORED_ONE_TIME_PREKEYS.
   */
  generateOneTimePrekeys(count: number): OneTimePrekey[] {
    checkBatch(count, this.#oneTime.size, MAX_STORED_ONE_TIME_PREKEYS, 'one-time prekeys');
    const out: OneTimePrekey[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.#takeId('oneTime', this.#oneTime);
      const stored = { id, keyPair: generateX25519KeyPair() };
      this.#oneTime.set(id, stored);
      out.push(publicOneTime(stored));
    }
    return out;
  }

  /** Like `generateOneTimePrekeys`, for signed one-time KEM prekeys (PQOPK_B). */
  generateOneTimeKemPrekeys(count: number): KemPrekey[] {
    checkBatch(count, this.#kemOneTime.size, MAX_STORED_ONE_TIME_KEM_PREKEYS, 'one-time KEM prekeys');
    const out: KemPrekey[] = [];
    for (let i = 0; i < count; i++) {
      const stored = this.#newKem(false);
      this.#kemOneTime.set(stored.id, stored);
      out.push(publicKem(stored, false));
    }
    return out;
  }

  /**
   * A new signed prekey becomes current; the oldest beyond MAX_SIGNED_PREKEYS_KEPT is deleted
   * (and wiped). Returns the new one to publish.
   */
  rotateSignedPrekey(): SignedPrekey {
    const id = this.#takeId('signed', new Map(this.#signed.map((p) => [p.id, p])));
    const keyPair = generateX25519KeyPair();
    const signature = sign(this.#identity, signedPrekeySignedData(id, keyPair.publicKey));
    this.#signed = keepNewest([...this.#signed, { id, keyPair, signature, createdAt: this.#clock.now() }]);
    return this.signedPrekey;
  }

  /** Like `rotateSignedPrekey`, for the last-resort KEM prekey. */
  rotateLastResortKemPrekey(): KemPrekey {
    this.#lastResort = keepNewest([...this.#lastResort, this.#newKem(true)]);
    return this.lastResortKemPrekey;
  }

  // -------------------------------------------------------------------------------------------
  // Lookups for session setup (PQXDH §3.4: "Bob ... loads the private keys identified by Alice")
  // -------------------------------------------------------------------------------------------

  /** The signed prekey `id` (current or kept), or undefined. */
  signedPrekeyKeyPair(id: number): X25519KeyPair | undefined {
    return this.#signed.find((p) => p.id === id)?.keyPair;
  }

  /** The unused one-time prekey `id`, or undefined. */
  oneTimePrekeyKeyPair(id: number): X25519KeyPair | undefined {
    return this.#oneTime.get(id)?.keyPair;
  }

  /** The KEM prekey `id` of the given kind (last-resort: current or kept; one-time: unused). */
  kemPrekeyKeyPair(id: number, lastResort: boolean): KemKeyPair | undefined {
    return lastResort
      ? this.#lastResort.find((p) => p.id === id)?.keyPair
      : this.#kemOneTime.get(id)?.keyPair;
  }

  /**
   * Deletes and wipes the one-time prekeys a session was set up with. Returns false (deleting
   * nothing) when one of them is already gone: another initial message used it first.
   */
  consumeOneTimePrekeys(
    oneTimePrekeyId: number | undefined,
    oneTimeKemPrekeyId: number | undefined,
  ): boolean {
    if (oneTimePrekeyId !== undefined && !this.#oneTime.has(oneTimePrekeyId)) return false;
    if (oneTimeKemPrekeyId !== undefined && !this.#kemOneTime.has(oneTimeKemPrekeyId)) return false;
    if (oneTimePrekeyId !== undefined) {
      this.#oneTime.get(oneTimePrekeyId)!.keyPair.secretKey.wipe();
      this.#oneTime.delete(oneTimePrekeyId);
    }
    if (oneTimeKemPrekeyId !== undefined) {
      this.#kemOneTime.get(oneTimeKemPrekeyId)!.keyPair.secretKey.wipe();
      this.#kemOneTime.delete(oneTimeKemPrekeyId);
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Pickle
  // -------------------------------------------------------------------------------------------

  /** The store as versioned bytes, encrypted under `key` (32 bytes) when given. */
  pickle(key?: Uint8Array): Promise<Uint8Array> {
    const signed = this.#signed;
    const lastResort = this.#lastResort;
    const kemOneTime = [...this.#kemOneTime.values()];
    const oneTime = [...this.#oneTime.values()];
    const size =
      1 +
      32 +
      12 +
      1 +
      signed.length * 108 +
      1 +
      lastResort.length * 108 +
      2 +
      kemOneTime.length * 100 +
      2 +
      oneTime.length * 36;
    const w = new BinaryWriter(size)
      .u8(PREKEY_STORE_PICKLE_VERSION)
      .bytes(this.identityKey.bytes)
      .u32(this.#next.signed)
      .u32(this.#next.kem)
      .u32(this.#next.oneTime)
      .u8(signed.length);
    for (const p of signed) w.u32(p.id).u64(p.createdAt).bytes(p.keyPair.secretKey.bytes).bytes(p.signature);
    w.u8(lastResort.length);
    for (const p of lastResort)
      w.u32(p.id).u64(p.createdAt).bytes(p.keyPair.secretKey.bytes).bytes(p.signature);
    w.u16(kemOneTime.length);
    for (const p of kemOneTime) w.u32(p.id).bytes(p.keyPair.secretKey.bytes).bytes(p.signature);
    w.u16(oneTime.length);
    for (const p of oneTime) w.u32(p.id).bytes(p.keyPair.secretKey.bytes);
    const body = w.finish();
    return sealPickle(body, PREKEY_STORE_PICKLE_AD, 'prekey store pickle', key).finally(() => wipe(body));
  }

  /**
   * Restores a store. `identity` must be the identity the store was made with
   * (IDENTITY_MISMATCH otherwise); BAD_PICKLE for anything that does not load.
   */
  static async fromPickle(
    pickle: Uint8Array,
    identity: IdentityKeyPair,
    key?: Uint8Array,
    options: PrekeyStoreOptions = {},
  ): Promise<PrekeyStore> {
    const what = 'prekey store pickle';
    const body = await openPickle(pickle, PREKEY_STORE_PICKLE_AD, what, key);
    const store = parsePickle(what, () => {
      const r = new BinaryReader(body, what);
      const version = r.u8('version');
      if (version !== PREKEY_STORE_PICKLE_VERSION) {
        throw badPickle(what, `expected version ${PREKEY_STORE_PICKLE_VERSION}, got ${version}`);
      }
      const identityKey = new IdentityPublicKey(r.fixed(32, 'identity key'));
      if (!identityKey.equals(identity.publicKey)) {
        throw new ProtocolError(
          ProtocolErrorCode.IdentityMismatch,
          `${what}: the store belongs to identity ${identityKey.fingerprint()}, not ${identity.publicKey.fingerprint()}`,
        );
      }
      const next = {
        signed: r.u32('next signed id'),
        kem: r.u32('next KEM id'),
        oneTime: r.u32('next one-time id'),
      };
      const readRotated = <T>(field: string, make: (seed: Uint8Array) => T) => {
        const count = r.u8(`${field} count`);
        if (count < 1 || count > MAX_SIGNED_PREKEYS_KEPT) {
          throw badPickle(what, `${field}: expected 1 to ${MAX_SIGNED_PREKEYS_KEPT}, got ${count}`);
        }
        const out: { id: number; keyPair: T; signature: Uint8Array; createdAt: number }[] = [];
        for (let i = 0; i < count; i++) {
          const id = r.u32(`${field} id`);
          const createdAt = r.u64(`${field} createdAt`);
          const keyPair = make(r.fixed(32, `${field} secret`));
          out.push({ id, createdAt, keyPair, signature: r.fixed(64, `${field} signature`) });
        }
        return out;
      };
      const signed = readRotated('signed prekeys', x25519KeyPairFromSecret);
      const lastResort = readRotated('last-resort KEM prekeys', kemKeyPairFromSecret);
      const s = new PrekeyStore(identity, options.clock ?? systemClock, next, signed, lastResort);
      const kemCount = r.u16('one-time KEM prekey count');
      if (kemCount > MAX_STORED_ONE_TIME_KEM_PREKEYS)
        throw badPickle(what, `${kemCount} one-time KEM prekeys`);
      for (let i = 0; i < kemCount; i++) {
        const id = r.u32('one-time KEM prekey id');
        const keyPair = kemKeyPairFromSecret(r.fixed(32, 'one-time KEM prekey seed'));
        s.#kemOneTime.set(id, {
          id,
          keyPair,
          signature: r.fixed(64, 'one-time KEM prekey signature'),
          createdAt: 0,
        });
      }
      const oneTimeCount = r.u16('one-time prekey count');
      if (oneTimeCount > MAX_STORED_ONE_TIME_PREKEYS)
        throw badPickle(what, `${oneTimeCount} one-time prekeys`);
      for (let i = 0; i < oneTimeCount; i++) {
        const id = r.u32('one-time prekey id');
        s.#oneTime.set(id, { id, keyPair: x25519KeyPairFromSecret(r.fixed(32, 'one-time prekey secret')) });
      }
      r.end();
      return s;
    });
    wipe(body);
    return store;
  }

  toJSON(): string {
    return `PrekeyStore(${this.identityKey.fingerprint()}, signed #${this.signedPrekey.id}, one-time ${this.#oneTime.size}, one-time KEM ${this.#kemOneTime.size})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }

  #newKem(lastResort: boolean): StoredKemPrekey {
    const inUse = new Map<number, unknown>(
      [...this.#lastResort, ...this.#kemOneTime.values()].map((p) => [p.id, p]),
    );
    const id = this.#takeId('kem', inUse);
    const keyPair = generateKemKeyPair();
    const signature = sign(this.#identity, kemPrekeySignedData(lastResort, id, keyPair.publicKey));
    return { id, keyPair, signature, createdAt: this.#clock.now() };
  }

  /** The next free id of a kind (wrapping past MAX_PREKEY_ID, skipping ids in use). */
  #takeId(kind: keyof Counters, inUse: ReadonlyMap<number, unknown>): number {
    let id = this.#next[kind];
    while (inUse.has(id)) id = id >= MAX_PREKEY_ID ? 1 : id + 1;
    this.#next[kind] = id >= MAX_PREKEY_ID ? 1 : id + 1;
    return id;
  }
}

function keepNewest<T extends { keyPair: { secretKey: { wipe(): void } } }>(list: T[]): T[] {
  const drop = list.length - MAX_SIGNED_PREKEYS_KEPT;
  for (let i = 0; i < drop; i++) list[i]!.keyPair.secretKey.wipe();
  return drop > 0 ? list.slice(drop) : list;
}

function checkBatch(count: number, held: number, max: number, what: string): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_ONE_TIME_PREKEYS_PER_BATCH) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: generate 1 to ${MAX_ONE_TIME_PREKEYS_PER_BATCH} at a time, got ${count}`,
    );
  }
  if (held + count > max) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `${what}: ${held} held, ${count} more would exceed the limit of ${max}: publish and let peers use them first`,
    );
  }
}

function publicSigned(p: StoredSignedPrekey): SignedPrekey {
  return { id: p.id, publicKey: p.keyPair.publicKey, signature: p.signature };
}

function publicKem(p: StoredKemPrekey, lastResort: boolean): KemPrekey {
  return { id: p.id, publicKey: p.keyPair.publicKey, signature: p.signature, lastResort };
}

function publicOneTime(p: StoredOneTimePrekey): OneTimePrekey {
  return { id: p.id, publicKey: p.keyPair.publicKey };
}
