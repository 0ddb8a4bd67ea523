/**
 * The one storage interface of the client library: a small key-value store whose writes are
 * atomic batches. The client persists {new ratchet state, seen message id, decrypted message in
 * the local inbox} in one batch before it acks the relay, and {advanced ratchet state, outbox
 * entry} in one batch before a message is first sent, so a crash at any point neither loses nor
 * repeats a message. Adapters: MemoryStore, IndexedDbStore (browsers), NodeFileStore
 * (`@usm/client/node`, encrypted at rest).
 *
 * Contract, for every adapter (checked by one shared test suite):
 *  - Keys are non-empty, well-formed UTF-16 strings of at most MAX_KEY_LENGTH code units;
 *    values are Uint8Arrays of at most MAX_VALUE_BYTES.
 *  - `write` applies every put and delete of the batch, or none of them; a key may appear only
 *    once per batch. When the promise resolves the batch is durable (as far as the platform
 *    lets the adapter know); when it rejects, the store is unchanged.
 *  - `list(prefix)` returns the entries whose key starts with `prefix`, sorted by key (UTF-16
 *    code unit order, the order of `<` on strings and of IndexedDB).
 *  - Values go in and come out as copies: mutating a returned array changes nothing stored.
 *  - Failures are ClientErrors: STORAGE_FAILED (I/O), CORRUPT_STORE (a damaged record),
 *    STORE_CLOSED (after close), INVALID_ARGUMENT (a bad key, value or batch). No message
 *    names a key, since key names can carry peer addresses.
 */
import { ClientError, ClientErrorCode } from '../errors.js';

/** One key and its value. */
export type StoreEntry = readonly [key: string, value: Uint8Array];

/** An atomic change: every put and delete happens, or none does. */
export interface WriteBatch {
  put?: readonly StoreEntry[];
  delete?: readonly string[];
}

export interface ClientStore {
  /** The value stored under `key`, or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Every entry whose key starts with `prefix` ('' for all), sorted by key. */
  list(prefix: string): Promise<StoreEntry[]>;
  /** Applies the batch atomically and durably; all or nothing. */
  write(batch: WriteBatch): Promise<void>;
  /** Releases the store; later calls fail with STORE_CLOSED. Idempotent. */
  close(): Promise<void>;
}

/** Longest key, in UTF-16 code units: keys are names (prefix + id), not data. */
export const MAX_KEY_LENGTH = 1024;
/** Largest value: 16 MiB, well above any ratchet state, envelope or message the client stores. */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;

// A lone surrogate cannot round-trip through UTF-8 (it becomes U+FFFD), so such keys are refused.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

/** Throws INVALID_ARGUMENT unless `key` is an acceptable key (the message never shows the key). */
export function assertKey(key: unknown, what = 'store key'): asserts key is string {
  if (typeof key !== 'string') throw invalid(`${what}: expected a string, got ${typeof key}`);
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw invalid(`${what}: expected 1 to ${MAX_KEY_LENGTH} characters, got ${key.length}`);
  }
  if (LONE_SURROGATE.test(key)) throw invalid(`${what}: contains a lone UTF-16 surrogate`);
}

export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw invalid(`list prefix: expected a string, got ${typeof prefix}`);
  if (prefix.length > MAX_KEY_LENGTH) {
    throw invalid(`list prefix: expected at most ${MAX_KEY_LENGTH} characters, got ${prefix.length}`);
  }
}

function isBytes(value: unknown): value is Uint8Array {
  // ArrayBuffer.isView + tag instead of instanceof: values may come from another realm (iframe, vm).
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Uint8Array]';
}

/** A batch checked and normalised: puts hold private copies of the values. */
export interface CheckedBatch {
  readonly put: StoreEntry[];
  readonly delete: string[];
}

/**
 * Checks a batch against the contract and copies its values, so a caller that reuses its
 * buffers after `write` returns cannot change what is stored.
 */
export function checkBatch(batch: WriteBatch): CheckedBatch {
  if (typeof batch !== 'object' || batch === null) throw invalid('write: expected a batch object');
  const puts = batch.put ?? [];
  const deletes = batch.delete ?? [];
  if (!Array.isArray(puts)) throw invalid('write: batch.put must be an array of [key, value] pairs');
  if (!Array.isArray(deletes)) throw invalid('write: batch.delete must be an array of keys');
  const seen = new Set<string>();
  const once = (key: string, i: number, what: string) => {
    if (seen.has(key)) throw invalid(`write: ${what} #${i} repeats a key already in this batch`);
    seen.add(key);
  };
  const put: StoreEntry[] = [];
  puts.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 2)
      throw invalid(`write: put #${i} is not a [key, value] pair`);
    const [key, value] = entry as [unknown, unknown];
    assertKey(key, `write: put #${i} key`);
    if (!isBytes(value)) throw invalid(`write: put #${i} value must be a Uint8Array`);
    if (value.length > MAX_VALUE_BYTES) {
      throw invalid(`write: put #${i} value has ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
    }
    once(key, i, 'put');
    put.push([key, new Uint8Array(value)]);
  });
  const del: string[] = [];
  deletes.forEach((key: unknown, i) => {
    assertKey(key, `write: delete #${i} key`);
    once(key, i, 'delete');
    del.push(key);
  });
  return { put, delete: del };
}

/** Key order of the contract: UTF-16 code units, as `<` compares strings. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function storeClosed(what: string): ClientError {
  return new ClientError(
    ClientErrorCode.StoreClosed,
    `${what}: the store is closed; open it again to continue`,
  );
}
