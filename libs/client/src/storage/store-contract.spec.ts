/**
 * The ClientStore contract, run against every adapter: MemoryStore, IndexedDbStore (on
 * fake-indexeddb) and NodeFileStore (a temporary directory, cheap Argon2id parameters).
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IDBFactory } from 'fake-indexeddb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ready } from '@usm/crypto';
import { ClientError, ClientErrorCode } from '../errors.js';
import { MAX_KEY_LENGTH, type ClientStore } from './client-store.js';
import { IndexedDbStore } from './indexeddb-store.js';
import { MemoryStore } from './memory-store.js';
import { NodeFileStore } from './node-file-store.js';

const CHEAP_KDF = { iterations: 1, memoryKiB: 1024 };
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

let root: string;
beforeAll(async () => {
  await ready();
  root = await mkdtemp(join(tmpdir(), 'usm-store-contract-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An adapter under test: `open` makes a fresh store; `reopen` opens the same data again, when it persists. */
interface Harness {
  open(): Promise<{ store: ClientStore; reopen?: () => Promise<ClientStore> }>;
}

let counter = 0;
const adapters: [string, Harness][] = [
  ['MemoryStore', { open: async () => ({ store: new MemoryStore() }) }],
  [
    'IndexedDbStore',
    {
      open: async () => {
        const indexedDB = new IDBFactory();
        const name = `contract-${++counter}`;
        const store = await IndexedDbStore.open({ name, indexedDB });
        return { store, reopen: () => IndexedDbStore.open({ name, indexedDB }) };
      },
    },
  ],
  [
    'NodeFileStore',
    {
      open: async () => {
        const directory = join(root, `contract-${++counter}`);
        const options = { directory, passphrase: 'correct horse battery staple', kdf: CHEAP_KDF };
        const store = await NodeFileStore.open(options);
        return { store, reopen: () => NodeFileStore.open(options) };
      },
    },
  ],
];

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return ClientError.is(err) ? err.code : `not a ClientError: ${String(err)}`;
  }
  return 'no error';
}

async function dump(store: ClientStore, prefix = ''): Promise<[string, string | undefined][]> {
  return (await store.list(prefix)).map(([k, v]) => [k, text(v)]);
}

describe.each(adapters)('%s honours the ClientStore contract', (_name, harness) => {
  it('puts, gets, overwrites and deletes', async () => {
    const { store } = await harness.open();
    expect(await store.get('a')).toBeUndefined();
    await store.write({ put: [['a', bytes('one')]] });
    expect(text(await store.get('a'))).toBe('one');
    await store.write({ put: [['a', bytes('two')]] });
    expect(text(await store.get('a'))).toBe('two');
    await store.write({ delete: ['a'] });
    expect(await store.get('a')).toBeUndefined();
    await store.write({ delete: ['never-there'] }); // deleting a missing key is not an error
    await store.write({ put: [['empty', new Uint8Array(0)]] });
    expect(await store.get('empty')).toEqual(new Uint8Array(0));
    await store.close();
  });

  it('applies every put and delete of a batch together', async () => {
    const { store } = await harness.open();
    await store.write({
      put: [
        ['ratchet/bob', bytes('state-1')],
        ['pending/1', bytes('x')],
      ],
    });
    await store.write({
      put: [
        ['ratchet/bob', bytes('state-2')],
        ['seen/1', bytes('')],
        ['inbox/1', bytes('hello')],
      ],
      delete: ['pending/1'],
    });
    expect(await dump(store)).toEqual([
      ['inbox/1', 'hello'],
      ['ratchet/bob', 'state-2'],
      ['seen/1', ''],
    ]);
    await store.close();
  });

  it('lists by prefix, sorted by UTF-16 code units', async () => {
    const { store } = await harness.open();
    const keys = ['p/b', 'p/a', 'p/\u{1F600}', 'p/\uFFFF', 'p/Z', 'p', 'q/a', 'o/z', 'p/a/1'];
    await store.write({ put: keys.map((k) => [k, bytes(k)] as const) });
    const listed = (await store.list('p/')).map(([k]) => k);
    expect(listed).toEqual(['p/Z', 'p/a', 'p/a/1', 'p/b', 'p/\u{1F600}', 'p/\uFFFF']);
    expect((await store.list('')).map(([k]) => k)).toEqual([...keys].sort());
    expect(await store.list('nothing/')).toEqual([]);
    for (const [k, v] of await store.list('p/')) expect(text(v)).toBe(k);
    await store.close();
  });

  it('refuses a bad batch with INVALID_ARGUMENT and applies nothing of it', async () => {
    const { store } = await harness.open();
    await store.write({ put: [['keep', bytes('v1')]] });
    const bad = [
      {
        put: [
          ['keep', bytes('v2')],
          ['dup', bytes('1')],
          ['dup', bytes('2')],
        ],
      },
      { put: [['keep', bytes('v2')]], delete: ['keep'] },
      {
        put: [
          ['keep', bytes('v2')],
          ['x', 'not bytes'],
        ],
      },
      {
        put: [
          ['keep', bytes('v2')],
          ['', bytes('1')],
        ],
      },
      {
        put: [
          ['keep', bytes('v2')],
          ['k'.repeat(MAX_KEY_LENGTH + 1), bytes('1')],
        ],
      },
      {
        put: [
          ['keep', bytes('v2')],
          ['lone \uD800 surrogate', bytes('1')],
        ],
      },
      { put: [['keep', bytes('v2')]], delete: [42] },
    ];
    for (const batch of bad) {
      expect(await codeOf(store.write(batch as never))).toBe(ClientErrorCode.InvalidArgument);
    }
    expect(await dump(store)).toEqual([['keep', 'v1']]);
    await store.close();
  });

  it('never names the key in an error message (keys can carry peer addresses)', async () => {
    const { store } = await harness.open();
    const secretish = 'peer/alice@example.org/\uDC00';
    let message = '';
    try {
      await store.write({ put: [[secretish, bytes('1')]] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('write: put #0 key: contains a lone UTF-16 surrogate');
    await store.close();
  });

  it('stores and returns copies of values', async () => {
    const { store } = await harness.open();
    const value = bytes('original');
    await store.write({ put: [['k', value]] });
    value.fill(0);
    const first = await store.get('k');
    first!.fill(0);
    const [[, listed]] = (await store.list('k')) as [[string, Uint8Array]];
    listed.fill(0);
    expect(text(await store.get('k'))).toBe('original');
    await store.close();
  });

  it('keeps a subarray view exactly (offset and length), not its whole buffer', async () => {
    const { store } = await harness.open();
    const big = bytes('0123456789');
    await store.write({ put: [['view', big.subarray(3, 6)]] });
    expect(text(await store.get('view'))).toBe('345');
    await store.close();
  });

  it('fails with STORE_CLOSED after close, and close is idempotent', async () => {
    const { store } = await harness.open();
    await store.close();
    await store.close();
    expect(await codeOf(store.get('a'))).toBe(ClientErrorCode.StoreClosed);
    expect(await codeOf(store.list(''))).toBe(ClientErrorCode.StoreClosed);
    expect(await codeOf(store.write({ put: [['a', bytes('1')]] }))).toBe(ClientErrorCode.StoreClosed);
  });

  it('keeps concurrent batches whole: the outcome is one of them, never a mix', async () => {
    const { store } = await harness.open();
    const batch = (tag: string) => ({
      put: ['x', 'y', 'z'].map((k) => [k, bytes(tag)] as const),
    });
    await Promise.all([store.write(batch('A')), store.write(batch('B')), store.write(batch('C'))]);
    const values = new Set((await dump(store)).map(([, v]) => v));
    expect(values.size).toBe(1);
    await store.close();
  });

  it('persists across reopen where the adapter is durable', async () => {
    const { store, reopen } = await harness.open();
    if (!reopen) {
      // MemoryStore is not durable by design: nothing to reopen.
      expect(store).toBeInstanceOf(MemoryStore);
      return;
    }
    await store.write({
      put: [
        ['a', bytes('1')],
        ['b', bytes('2')],
      ],
    });
    await store.write({ put: [['c', bytes('3')]], delete: ['a'] });
    await store.close();
    const again = await reopen();
    expect(await dump(again)).toEqual([
      ['b', '2'],
      ['c', '3'],
    ]);
    await again.close();
  });
});
