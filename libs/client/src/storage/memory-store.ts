/**
 * A ClientStore in memory: for tests and for ephemeral apps that accept losing everything when
 * the page or process goes away. Batches are atomic because they are applied synchronously
 * after validation (nothing can fail half-way).
 */
import {
  assertKey,
  assertPrefix,
  checkBatch,
  compareKeys,
  storeClosed,
  type ClientStore,
  type StoreEntry,
  type WriteBatch,
} from './client-store.js';

/**
 * @example
 * const store = new MemoryStore();
 * await store.write({ put: [['inbox/1', bytes]] });
 */
export class MemoryStore implements ClientStore {
  readonly #data = new Map<string, Uint8Array>();
  #closed = false;

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#open('get');
    assertKey(key);
    const value = this.#data.get(key);
    return value && new Uint8Array(value);
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    this.#open('list');
    assertPrefix(prefix);
    const out: StoreEntry[] = [];
    for (const [key, value] of this.#data) {
      if (key.startsWith(prefix)) out.push([key, new Uint8Array(value)]);
    }
    return out.sort((a, b) => compareKeys(a[0], b[0]));
  }

  async write(batch: WriteBatch): Promise<void> {
    this.#open('write');
    const checked = checkBatch(batch);
    for (const key of checked.delete) this.#data.delete(key);
    for (const [key, value] of checked.put) this.#data.set(key, value);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const value of this.#data.values()) value.fill(0);
    this.#data.clear();
  }

  #open(what: string): void {
    if (this.#closed) throw storeClosed(what);
  }
}
