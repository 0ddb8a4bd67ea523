/**
 * A ClientStore on IndexedDB, for browsers: one database with one object store of
 * (string key -> Uint8Array value). A batch is one `readwrite` transaction, which IndexedDB
 * commits atomically (all requests or none); the promise resolves on the transaction's
 * `complete` event. The transaction asks for `durability: 'strict'` so that `complete` means
 * flushed to disk where the browser supports the hint (the client acks the relay after it).
 *
 * Not encrypted at rest: the data sits in the origin's storage, readable by code running on the
 * origin and by whoever can read the browser profile. Two tabs of one app share the database;
 * the client above must keep one tab in charge of an identity (e.g. with the Web Locks API).
 */
import { ClientError, ClientErrorCode } from '../errors.js';
import {
  assertKey,
  assertPrefix,
  checkBatch,
  storeClosed,
  type ClientStore,
  type StoreEntry,
  type WriteBatch,
} from './client-store.js';

export interface IndexedDbStoreOptions {
  /** The database name; one per identity if an app holds several. @default 'usm-client' */
  name?: string;
  /** The IndexedDB factory (tests pass fake-indexeddb's). @default globalThis.indexedDB */
  indexedDB?: IDBFactory;
}

const OBJECT_STORE = 'kv';
const DB_VERSION = 1;

function failed(what: string, cause: unknown): ClientError {
  const tag = (cause as { name?: unknown } | null | undefined)?.name;
  const name = typeof tag === 'string' ? tag : 'unknown error';
  const hint =
    name === 'QuotaExceededError'
      ? 'the browser storage quota is exhausted: free space or ask for persistent storage'
      : 'check that IndexedDB is available (not a private window with storage disabled) and retry';
  return new ClientError(ClientErrorCode.StorageFailed, `IndexedDB ${what} failed (${name}): ${hint}`, {
    cause,
  });
}

function toBytes(value: unknown): Uint8Array {
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  }
  throw new ClientError(
    ClientErrorCode.CorruptStore,
    'IndexedDB store: a stored value is not a byte array; the database was changed by other code',
  );
}

/**
 * @example
 * const store = await IndexedDbStore.open({ name: 'usm-alice' });
 * await store.write({ put: [['inbox/1', bytes]], delete: ['outbox/7'] });
 */
export class IndexedDbStore implements ClientStore {
  #db: IDBDatabase | undefined;
  #lostReason: string | undefined;

  private constructor(db: IDBDatabase) {
    this.#db = db;
    // Another tab upgrading the schema, or the browser clearing site data, takes the database away.
    db.onversionchange = () => {
      this.#lostReason = 'another tab opened a newer version of the database; reload this page';
      db.close();
    };
    db.onclose = () => {
      this.#lostReason = 'the browser closed the database (site data cleared?); reload this page';
    };
  }

  /** Opens (creating if needed) the database. */
  static async open(options: IndexedDbStoreOptions = {}): Promise<IndexedDbStore> {
    const name = options.name ?? 'usm-client';
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!factory) {
      throw new ClientError(
        ClientErrorCode.StorageFailed,
        'IndexedDB is not available here: in Node use NodeFileStore from @usm/client/node, or MemoryStore',
      );
    }
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      let req: IDBOpenDBRequest;
      try {
        req = factory.open(name, DB_VERSION);
      } catch (err) {
        reject(failed('open', err));
        return;
      }
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(OBJECT_STORE)) req.result.createObjectStore(OBJECT_STORE);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(failed('open', req.error));
      req.onblocked = () =>
        reject(
          new ClientError(
            ClientErrorCode.StoreInUse,
            'IndexedDB open is blocked by another tab holding an older version open; close it and retry',
          ),
        );
    });
    return new IndexedDbStore(db);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertKey(key);
    const value = await this.#run('get', 'readonly', (store) => store.get(key));
    return value === undefined ? undefined : toBytes(value);
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    assertPrefix(prefix);
    const out: [string, unknown][] = [];
    await this.#run('list', 'readonly', (store) => {
      const req = store.openCursor(prefix === '' ? null : IDBKeyRange.lowerBound(prefix));
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return;
        const key = cursor.key;
        // Keys are sorted; the first one without the prefix ends the range.
        if (typeof key !== 'string' || !key.startsWith(prefix)) return;
        out.push([key, cursor.value]);
        cursor.continue();
      };
      return undefined;
    });
    return out.map(([key, value]) => [key, toBytes(value)] as const);
  }

  async write(batch: WriteBatch): Promise<void> {
    const checked = checkBatch(batch);
    if (checked.put.length === 0 && checked.delete.length === 0) {
      this.#database('write');
      return;
    }
    await this.#run('write', 'readwrite', (store) => {
      for (const key of checked.delete) store.delete(key);
      for (const [key, value] of checked.put) store.put(value, key);
      return undefined;
    });
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
  }

  #database(what: string): IDBDatabase {
    if (this.#lostReason !== undefined) {
      throw new ClientError(ClientErrorCode.StorageFailed, `IndexedDB ${what}: ${this.#lostReason}`);
    }
    if (!this.#db) throw storeClosed(what);
    return this.#db;
  }

  /**
   * Runs `body` in one transaction and settles when the transaction completes (so a write is
   * committed) or aborts (so nothing of it happened). `body` may return one request whose
   * result is the outcome.
   */
  #run<T>(
    what: string,
    mode: IDBTransactionMode,
    body: (store: IDBObjectStore) => IDBRequest<T> | undefined,
  ): Promise<T | undefined> {
    const db = this.#database(what);
    return new Promise<T | undefined>((resolve, reject) => {
      let tx: IDBTransaction;
      let req: IDBRequest<T> | undefined;
      try {
        tx = db.transaction(OBJECT_STORE, mode, { durability: 'strict' });
      } catch (err) {
        reject(failed(what, err));
        return;
      }
      tx.oncomplete = () => resolve(req?.result);
      tx.onabort = () => reject(failed(what, tx.error));
      try {
        req = body(tx.objectStore(OBJECT_STORE));
      } catch (err) {
        // A request that throws synchronously (DataCloneError...) must not let the rest commit.
        try {
          tx.abort();
        } catch {
          // already finished
        }
        reject(failed(what, err));
      }
    });
  }
}
