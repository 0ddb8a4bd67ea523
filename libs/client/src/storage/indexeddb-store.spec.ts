/**
 * IndexedDbStore beyond the shared contract, on fake-indexeddb (a real browser runs it with the
 * web demo's tests): failures inside a transaction, a database taken away, foreign values.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from '@jest/globals';
import { IDBFactory, IDBObjectStore, forceCloseDatabase } from 'fake-indexeddb';
import { ClientError, ClientErrorCode } from '../errors.js';
import { IndexedDbStore } from './indexeddb-store.js';

const bytes = (s: string) => new TextEncoder().encode(s);
let counter = 0;

async function failure(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (err) {
    if (ClientError.is(err)) return err;
    throw new Error(`expected a ClientError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a failure');
}

async function fresh() {
  const indexedDB = new IDBFactory();
  const name = `idb-${++counter}`;
  return { indexedDB, name, store: await IndexedDbStore.open({ name, indexedDB }) };
}

describe('IndexedDbStore', () => {
  it('rolls the whole batch back when a request fails half-way (STORAGE_FAILED, nothing applied)', async () => {
    const { store } = await fresh();
    await store.write({ put: [['a', bytes('1')]] });
    const put = IDBObjectStore.prototype.put;
    let calls = 0;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
      if (++calls === 2) throw new DOMException('disk quota reached', 'QuotaExceededError');
      return put.apply(this, args);
    };
    let err: ClientError;
    try {
      err = await failure(
        store.write({
          put: [
            ['a', bytes('2')],
            ['b', bytes('2')],
          ],
        }),
      );
    } finally {
      IDBObjectStore.prototype.put = put;
    }
    expect(err.code).toBe(ClientErrorCode.StorageFailed);
    expect(err.message).toBe(
      'IndexedDB write failed (QuotaExceededError): the browser storage quota is exhausted: free space or ask for persistent storage',
    );
    expect(err.cause).toBeInstanceOf(DOMException);
    expect((await store.list('')).map(([k, v]) => [k, new TextDecoder().decode(v)])).toEqual([['a', '1']]);
    await store.close();
  });

  it('rolls back deletes too when a later put of the same batch fails', async () => {
    const { store } = await fresh();
    await store.write({ put: [['keep', bytes('1')]] });
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('boom', 'UnknownError');
    };
    let err: ClientError;
    try {
      err = await failure(store.write({ put: [['new', bytes('x')]], delete: ['keep'] }));
    } finally {
      IDBObjectStore.prototype.put = put;
    }
    expect(err.code).toBe(ClientErrorCode.StorageFailed);
    expect(new TextDecoder().decode(await store.get('keep'))).toBe('1');
    expect(await store.get('new')).toBeUndefined();
    await store.close();
  });

  it('says so when another tab upgrades the database', async () => {
    const a = await fresh();
    await a.store.write({ put: [['a', bytes('1')]] });
    // Another tab opening version 2: the store must step aside (close) so the upgrade is not blocked.
    const upgrade = a.indexedDB.open(a.name, 2);
    await new Promise<void>((resolve, reject) => {
      upgrade.onsuccess = () => {
        upgrade.result.close();
        resolve();
      };
      upgrade.onerror = () => reject(upgrade.error);
    });
    const err = await failure(a.store.get('a'));
    expect(err.code).toBe(ClientErrorCode.StorageFailed);
    expect(err.message).toBe(
      'IndexedDB get: another tab opened a newer version of the database; reload this page',
    );
  });

  it('says so when the browser closes the database (site data cleared)', async () => {
    const factory = new IDBFactory();
    let connection: IDBDatabase | undefined;
    const spy = {
      open: (name: string, version?: number) => {
        const req = factory.open(name, version);
        req.addEventListener('success', () => (connection = req.result));
        return req;
      },
    } as IDBFactory;
    const store = await IndexedDbStore.open({ name: 'closed-by-browser', indexedDB: spy });
    await store.write({ put: [['a', bytes('1')]] });
    forceCloseDatabase(connection as never);
    const err = await failure(store.write({ put: [['b', bytes('2')]] }));
    expect(err.code).toBe(ClientErrorCode.StorageFailed);
    expect(err.message).toBe(
      'IndexedDB write: the browser closed the database (site data cleared?); reload this page',
    );
  });

  it('CORRUPT_STORE for a value other code put into the database', async () => {
    const { indexedDB, name, store } = await fresh();
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open(name);
      req.onsuccess = () => {
        const tx = req.result.transaction('kv', 'readwrite');
        tx.objectStore('kv').put('a string, not bytes', 'foreign');
        tx.oncomplete = () => {
          req.result.close();
          resolve();
        };
        tx.onabort = () => reject(tx.error);
      };
    });
    expect((await failure(store.get('foreign'))).code).toBe(ClientErrorCode.CorruptStore);
    expect((await failure(store.list(''))).code).toBe(ClientErrorCode.CorruptStore);
    await store.close();
  });

  it('STORAGE_FAILED with a hint when there is no IndexedDB at all (Node without a fake)', async () => {
    const saved = globalThis.indexedDB;
    (globalThis as { indexedDB?: IDBFactory }).indexedDB = undefined;
    try {
      const err = await failure(IndexedDbStore.open());
      expect(err.code).toBe(ClientErrorCode.StorageFailed);
      expect(err.message).toBe(
        'IndexedDB is not available here: in Node use NodeFileStore from @usm/client/node, or MemoryStore',
      );
    } finally {
      globalThis.indexedDB = saved;
    }
  });
});
