/**
 * NodeFileStore beyond the shared contract: crashes at every byte of a batch, damaged and
 * altered files, the passphrase, nothing readable on disk, compaction, I/O failures.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, readdirSync, readlinkSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARGON2ID_DEFAULTS, ready } from '@usm/crypto';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { ClientStore } from './client-store.js';
import { FRAME_HEADER_BYTES, HEADER_FILE, LOG_FILE, LOG_HEADER_BYTES } from './log-format.js';
import { NodeFileStore, type NodeFileStoreOptions } from './node-file-store.js';

const CHEAP_KDF = { iterations: 1, memoryKiB: 1024 };
const PASSPHRASE = 'correct horse battery staple';
const bytes = (s: string) => new TextEncoder().encode(s);

let root: string;
let counter = 0;
beforeAll(async () => {
  await ready();
  root = await mkdtemp(join(tmpdir(), 'usm-file-store-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const freshDir = () => join(root, `s${++counter}`);
const options = (directory: string, extra: Partial<NodeFileStoreOptions> = {}): NodeFileStoreOptions => ({
  directory,
  passphrase: PASSPHRASE,
  kdf: CHEAP_KDF,
  ...extra,
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return ClientError.is(err) ? err.code : `not a ClientError: ${String(err)}`;
  }
  return 'no error';
}

async function dump(store: ClientStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of await store.list('')) out[k] = new TextDecoder().decode(v);
  return out;
}

async function contentOf(directory: string): Promise<Record<string, string>> {
  const store = await NodeFileStore.open(options(directory));
  try {
    return await dump(store);
  } finally {
    await store.close();
  }
}

/** A copy of `from` whose log is `log`. */
async function withLog(from: string, log: Uint8Array): Promise<string> {
  const dir = freshDir();
  await mkdir(dir);
  await copyFile(join(from, HEADER_FILE), join(dir, HEADER_FILE));
  await writeFile(join(dir, LOG_FILE), log);
  return dir;
}

const logSize = async (dir: string) => (await stat(join(dir, LOG_FILE))).size;

/** A store of three batches; returns the directory and where each frame starts and ends. */
async function threeBatches(): Promise<{ dir: string; bounds: number[] }> {
  const dir = freshDir();
  const store = await NodeFileStore.open(options(dir));
  const bounds = [await logSize(dir)];
  await store.write({
    put: [
      ['ratchet/bob', bytes('state-1')],
      ['inbox/1', bytes('hi bob')],
    ],
  });
  bounds.push(await logSize(dir));
  await store.write({
    put: [
      ['ratchet/bob', bytes('state-2')],
      ['inbox/2', bytes('how are you')],
    ],
  });
  bounds.push(await logSize(dir));
  await store.write({
    put: [
      ['ratchet/bob', bytes('state-3')],
      ['seen/3', bytes('')],
      ['inbox/3', bytes('fine, thanks')],
    ],
    delete: ['inbox/1'],
  });
  bounds.push(await logSize(dir));
  await store.close();
  return { dir, bounds };
}

const AFTER_TWO = { 'ratchet/bob': 'state-2', 'inbox/1': 'hi bob', 'inbox/2': 'how are you' };
const AFTER_THREE = {
  'ratchet/bob': 'state-3',
  'inbox/2': 'how are you',
  'inbox/3': 'fine, thanks',
  'seen/3': '',
};

describe('NodeFileStore: a crash at any byte of a batch', () => {
  it('yields the whole last batch or none of it, and later writes append after the last good frame', async () => {
    const { dir, bounds } = await threeBatches();
    const log = await readFile(join(dir, LOG_FILE));
    const [, , start, end] = bounds as [number, number, number, number];
    expect(log.length).toBe(end);
    expect(await contentOf(dir)).toEqual(AFTER_THREE);
    for (let cut = start; cut < end; cut++) {
      const copy = await withLog(dir, log.subarray(0, cut));
      const store = await NodeFileStore.open(options(copy));
      expect(await dump(store)).toEqual(AFTER_TWO);
      expect(await logSize(copy)).toBe(start); // the torn tail was cut off
      await store.write({ put: [['after-crash', bytes('ok')]] });
      await store.close();
      expect(await contentOf(copy)).toEqual({ ...AFTER_TWO, 'after-crash': 'ok' });
    }
  });

  it('ignores a tail that a crash left as zeros or garbage', async () => {
    const { dir, bounds } = await threeBatches();
    const log = await readFile(join(dir, LOG_FILE));
    const [, , start] = bounds as [number, number, number, number];
    const zeros = Buffer.concat([log.subarray(0, start), Buffer.alloc(300)]);
    expect(await contentOf(await withLog(dir, zeros))).toEqual(AFTER_TWO);
    const garbage = Buffer.concat([log, Buffer.from('not a frame, just noise from a torn write')]);
    expect(await contentOf(await withLog(dir, garbage))).toEqual(AFTER_THREE);
  });
});

describe('NodeFileStore: damage is reported, never silently dropped', () => {
  it('CORRUPT_STORE when any byte of an older frame changes', async () => {
    const { dir, bounds } = await threeBatches();
    const log = await readFile(join(dir, LOG_FILE));
    const [first, second] = bounds as [number, number, number, number];
    for (let i = first; i < second; i++) {
      const damaged = Buffer.from(log);
      damaged[i] = damaged[i]! ^ 0x01;
      expect(await codeOf(NodeFileStore.open(options(await withLog(dir, damaged))))).toBe(
        ClientErrorCode.CorruptStore,
      );
    }
  });

  it('CORRUPT_STORE when a whole frame is removed from the middle, or frames are swapped', async () => {
    const { dir, bounds } = await threeBatches();
    const log = await readFile(join(dir, LOG_FILE));
    const [a, b, c, d] = bounds as [number, number, number, number];
    const dropped = Buffer.concat([log.subarray(0, b), log.subarray(c)]);
    expect(await codeOf(NodeFileStore.open(options(await withLog(dir, dropped))))).toBe(
      ClientErrorCode.CorruptStore,
    );
    const swapped = Buffer.concat([
      log.subarray(0, a),
      log.subarray(b, c),
      log.subarray(a, b),
      log.subarray(c, d),
    ]);
    expect(await codeOf(NodeFileStore.open(options(await withLog(dir, swapped))))).toBe(
      ClientErrorCode.CorruptStore,
    );
  });

  it('CORRUPT_STORE for a damaged log header, a log without header file, or a header that is not JSON', async () => {
    const { dir } = await threeBatches();
    const log = await readFile(join(dir, LOG_FILE));
    const badMagic = Buffer.from(log);
    badMagic[0] = 0;
    expect(await codeOf(NodeFileStore.open(options(await withLog(dir, badMagic))))).toBe(
      ClientErrorCode.CorruptStore,
    );

    const headless = await withLog(dir, log);
    await rm(join(headless, HEADER_FILE));
    expect(await codeOf(NodeFileStore.open(options(headless)))).toBe(ClientErrorCode.CorruptStore);

    const badJson = await withLog(dir, log);
    await writeFile(join(badJson, HEADER_FILE), '{"format": "usm-client-store", ');
    expect(await codeOf(NodeFileStore.open(options(badJson)))).toBe(ClientErrorCode.CorruptStore);

    const hugeKdf = await withLog(dir, log);
    const header = JSON.parse(await readFile(join(dir, HEADER_FILE), 'utf8'));
    header.kdf.memoryKiB = 2 ** 40;
    await writeFile(join(hugeKdf, HEADER_FILE), JSON.stringify(header));
    expect(await codeOf(NodeFileStore.open(options(hugeKdf)))).toBe(ClientErrorCode.CorruptStore);
  });
});

describe('NodeFileStore: the passphrase', () => {
  it('BAD_PASSPHRASE for a wrong passphrase or an altered salt; the right one still opens', async () => {
    const { dir } = await threeBatches();
    expect(
      await codeOf(NodeFileStore.open({ ...options(dir), passphrase: 'correct horse battery stapler' })),
    ).toBe(ClientErrorCode.BadPassphrase);
    const altered = await withLog(dir, await readFile(join(dir, LOG_FILE)));
    const header = JSON.parse(await readFile(join(dir, HEADER_FILE), 'utf8'));
    header.kdf.salt = '00'.repeat(16);
    await writeFile(join(altered, HEADER_FILE), JSON.stringify(header));
    expect(await codeOf(NodeFileStore.open(options(altered)))).toBe(ClientErrorCode.BadPassphrase);
    expect(await contentOf(dir)).toEqual(AFTER_THREE);
  });

  it('opens with the same passphrase typed in another Unicode normal form (NFC and NFD)', async () => {
    const dir = freshDir();
    const composed = 'caf\u00e9 cr\u00e8me';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const store = await NodeFileStore.open({ ...options(dir), passphrase: composed });
    await store.write({ put: [['k', bytes('v')]] });
    await store.close();
    const again = await NodeFileStore.open({ ...options(dir), passphrase: decomposed });
    expect(await dump(again)).toEqual({ k: 'v' });
    await again.close();
  });

  it('INVALID_ARGUMENT for an empty passphrase', async () => {
    expect(await codeOf(NodeFileStore.open({ ...options(freshDir()), passphrase: '' }))).toBe(
      ClientErrorCode.InvalidArgument,
    );
  });

  it('records RFC 9106 second-recommendation Argon2id parameters by default, and those passed for tests', async () => {
    const cheap = freshDir();
    await (await NodeFileStore.open(options(cheap))).close();
    const cheapHeader = JSON.parse(await readFile(join(cheap, HEADER_FILE), 'utf8'));
    expect(cheapHeader.kdf).toMatchObject({
      algorithm: 'argon2id',
      iterations: 1,
      memoryKiB: 1024,
      parallelism: 1,
    });
    expect(cheapHeader.kdf.salt).toMatch(/^[0-9a-f]{32}$/);

    const standard = freshDir();
    await (await NodeFileStore.open({ directory: standard, passphrase: PASSPHRASE })).close();
    const header = JSON.parse(await readFile(join(standard, HEADER_FILE), 'utf8'));
    expect(header.kdf).toMatchObject({ algorithm: 'argon2id', ...ARGON2ID_DEFAULTS });
    expect(header.kdf.salt).not.toBe(cheapHeader.kdf.salt);
  });
});

describe('NodeFileStore: nothing readable on disk', () => {
  it('holds no key name, value or passphrase bytes in any file, before and after compaction', async () => {
    const dir = freshDir();
    const markers = ['alice@relay.example.org', 'MARKER-VALUE-7f3a', 'MARKER-KEY-91bc', PASSPHRASE];
    const store = await NodeFileStore.open(options(dir, { compactionMinBytes: 0 }));
    for (let i = 0; i < 20; i++) {
      await store.write({
        put: [
          [`session/alice@relay.example.org/MARKER-KEY-91bc/${i}`, bytes(`MARKER-VALUE-7f3a #${i}`)],
          ['ratchet/alice@relay.example.org', bytes(`MARKER-VALUE-7f3a state ${i}`)],
        ],
        delete: i > 0 ? [`session/alice@relay.example.org/MARKER-KEY-91bc/${i - 1}`] : [],
      });
    }
    const scan = async () => {
      const files = await readdir(dir);
      expect(files.sort()).toEqual([HEADER_FILE, LOG_FILE]);
      for (const file of files) {
        const raw = await readFile(join(dir, file));
        for (const marker of markers) {
          expect(raw.includes(Buffer.from(marker, 'utf8'))).toBe(false);
          expect(raw.includes(Buffer.from(marker, 'utf16le'))).toBe(false);
        }
      }
    };
    await scan();
    await store.close();
    await scan();
    // The markers are really in there, behind the passphrase.
    const reopened = await NodeFileStore.open(options(dir));
    expect(new TextDecoder().decode(await reopened.get('ratchet/alice@relay.example.org'))).toBe(
      'MARKER-VALUE-7f3a state 19',
    );
    await reopened.close();
  });

  it('creates its files readable by the owner only', async () => {
    if (process.platform === 'win32') return;
    const { dir } = await threeBatches();
    for (const file of [HEADER_FILE, LOG_FILE]) {
      expect((await stat(join(dir, file))).mode & 0o777).toBe(0o600);
    }
  });
});

describe('NodeFileStore: compaction', () => {
  it('keeps the log near the live data size and loses nothing', async () => {
    const dir = freshDir();
    const store = await NodeFileStore.open(options(dir, { compactionMinBytes: 0 }));
    const value = new Uint8Array(1000).fill(7);
    for (let i = 0; i < 200; i++) {
      await store.write({
        put: [
          ['hot', value],
          [`cold/${i % 5}`, bytes(`v${i}`)],
        ],
      });
    }
    const size = await logSize(dir);
    // Live data is about 1 KiB; 200 uncompacted batches would be above 200 KiB.
    expect(size).toBeLessThan(4 * 1024);
    await store.close();
    const again = await NodeFileStore.open(options(dir));
    expect((await again.get('hot'))!).toEqual(value);
    expect(Object.keys(await dump(again)).sort()).toEqual([
      'cold/0',
      'cold/1',
      'cold/2',
      'cold/3',
      'cold/4',
      'hot',
    ]);
    expect(new TextDecoder().decode(await again.get('cold/4'))).toBe('v199');
    await again.close();
  });

  it('treats damage inside the fsynced snapshot as corruption, not as a torn write', async () => {
    const dir = freshDir();
    const store = await NodeFileStore.open(options(dir, { compactionMinBytes: 0 }));
    for (let i = 0; i < 10; i++) await store.write({ put: [['k', bytes(`value ${i}`)]] });
    await store.close();
    const log = await readFile(join(dir, LOG_FILE));
    const snapshotEnd = Number(log.readBigUInt64BE(8));
    expect(snapshotEnd).toBeGreaterThan(LOG_HEADER_BYTES);
    // The snapshot frame may be the last frame of the file: damage to it must still be reported.
    const onlySnapshot = log.subarray(0, snapshotEnd);
    expect(await contentOf(await withLog(dir, onlySnapshot))).toEqual({
      k: expect.stringMatching(/^value \d$/),
    });
    const damaged = Buffer.from(onlySnapshot);
    damaged[snapshotEnd - 1] = damaged[snapshotEnd - 1]! ^ 0x80;
    expect(await codeOf(NodeFileStore.open(options(await withLog(dir, damaged))))).toBe(
      ClientErrorCode.CorruptStore,
    );
    const cut = onlySnapshot.subarray(0, LOG_HEADER_BYTES + FRAME_HEADER_BYTES + 3);
    expect(await codeOf(NodeFileStore.open(options(await withLog(dir, cut))))).toBe(
      ClientErrorCode.CorruptStore,
    );
  });

  it('ignores a temporary file left by a crash during compaction', async () => {
    const { dir } = await threeBatches();
    await writeFile(join(dir, LOG_FILE + '.tmp'), 'half a snapshot');
    expect(await contentOf(dir)).toEqual(AFTER_THREE);
    expect((await readdir(dir)).sort()).toEqual([HEADER_FILE, LOG_FILE]);
  });
});

describe('NodeFileStore: a store that fails says so', () => {
  /** Closes the store's log descriptor behind its back, as a failing disk or a revoked mount would. */
  function breakLogDescriptor(dir: string): void {
    for (const fd of readdirSync('/proc/self/fd')) {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue;
      }
      if (target === join(dir, LOG_FILE)) closeSync(Number(fd));
    }
  }

  it('STORAGE_FAILED on a failed write, then refuses use until reopened; the disk keeps the last good batch', async () => {
    if (process.platform !== 'linux') return;
    const dir = freshDir();
    const store = await NodeFileStore.open(options(dir));
    await store.write({ put: [['a', bytes('1')]] });
    breakLogDescriptor(dir);
    expect(
      await codeOf(
        store.write({
          put: [
            ['a', bytes('2')],
            ['b', bytes('2')],
          ],
        }),
      ),
    ).toBe(ClientErrorCode.StorageFailed);
    expect(await codeOf(store.get('a'))).toBe(ClientErrorCode.StorageFailed);
    expect(await codeOf(store.write({ put: [['c', bytes('3')]] }))).toBe(ClientErrorCode.StorageFailed);
    await store.close().catch(() => undefined); // its descriptor is gone; closing may report that
    expect(await contentOf(dir)).toEqual({ a: '1' });
  });

  it('STORAGE_FAILED when the directory cannot be created, STORE_IN_USE when already open here', async () => {
    const file = join(root, `plain-file-${++counter}`);
    await writeFile(file, 'x');
    expect(await codeOf(NodeFileStore.open(options(join(file, 'store'))))).toBe(
      ClientErrorCode.StorageFailed,
    );

    const dir = freshDir();
    const first = await NodeFileStore.open(options(dir));
    expect(await codeOf(NodeFileStore.open(options(dir)))).toBe(ClientErrorCode.StoreInUse);
    await first.close();
    await (await NodeFileStore.open(options(dir))).close();
  });

  it('STORAGE_FAILED when the log cannot be read', async () => {
    const { dir } = await threeBatches();
    const copy = await withLog(dir, await readFile(join(dir, LOG_FILE)));
    await rm(join(copy, LOG_FILE));
    await mkdir(join(copy, LOG_FILE)); // a directory where the log should be: EISDIR
    expect(await codeOf(NodeFileStore.open(options(copy)))).toBe(ClientErrorCode.StorageFailed);
  });

  it('recreates an empty log when a crash hit between writing the header and the log', async () => {
    const { dir } = await threeBatches();
    const copy = await withLog(dir, new Uint8Array(0));
    await rm(join(copy, LOG_FILE));
    expect(await contentOf(copy)).toEqual({});
    expect(await logSize(copy)).toBe(LOG_HEADER_BYTES);
    await truncate(join(copy, LOG_FILE), 3); // a log file too short to hold its header
    expect(await codeOf(NodeFileStore.open(options(copy)))).toBe(ClientErrorCode.CorruptStore);
  });
});
