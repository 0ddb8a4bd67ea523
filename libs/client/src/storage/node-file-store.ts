/**
 * A ClientStore in one directory on the local file system, encrypted at rest. The only file of
 * the library that imports node:fs; it is exported from `@usm/client/node`, never from the
 * package entry, so browser bundles never see it.
 *
 * Why an append-only log (and not a whole-file rewrite per batch): a client persists a batch per
 * message received and per message sent, and its store grows with the local inbox; rewriting
 * the whole file each time costs O(store) per message, appending costs O(batch). The log:
 *  - one frame per batch, appended at the end, then fdatasync; `write` resolves only after it;
 *  - on open, frames are replayed in order. Only the frame being appended when the process or
 *    machine died can be damaged by a crash, so a bad frame followed by nothing authentic
 *    (checked by scanning the rest of the file for a frame that authenticates) is a torn tail:
 *    it is cut off, and the batch it held never happened (its `write` never resolved).
 *    A bad frame with an authentic frame after it, or inside the fsynced snapshot, is
 *    corruption: CORRUPT_STORE, never a silent loss;
 *  - compaction, when the log is more than twice the live data: a snapshot of every entry is
 *    written to store.log.tmp, fsynced, renamed over store.log, and the directory fsynced. A
 *    crash before the rename leaves the old log, after it the new one; both are complete.
 *
 * A frame whose write fails half-way is cut off again (truncate + fsync); whatever happens the
 * store then refuses further use (STORAGE_FAILED) until reopened, since after a failed fsync
 * the kernel's view of the file cannot be trusted. The format and its cryptography are
 * described in log-format.ts.
 *
 * Limits, stated honestly: the whole store is held in memory as plaintext while open (a
 * client's state, not an archive); frame sizes and times show how much was written when;
 * someone able to write the directory can roll it back to an older copy; one process at a time
 * may open a directory (this is enforced within a process, not across processes).
 *
 * One file past 400 lines: open, replay, append, cut-off and compaction all work on the one log
 * handle, record key and write queue held here; split apart, each piece would need them handed in.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import {
  ARGON2ID_DEFAULTS,
  ARGON2ID_SALT_BYTES,
  CryptoError,
  RANDOM_NONCE_OVERHEAD,
  deriveKeyFromPassphrase,
  fromHex,
  hkdf,
  openWithRandomNonce,
  randomBytes,
  ready,
  sealWithRandomNonce,
  toHex,
  wipe,
  type Argon2idParams,
} from '@usm/crypto';
import { ClientError, ClientErrorCode } from '../errors.js';
import { SerialQueue } from '../locks.js';
import {
  assertKey,
  assertPrefix,
  checkBatch,
  compareKeys,
  storeClosed,
  type CheckedBatch,
  type ClientStore,
  type StoreEntry,
  type WriteBatch,
} from './client-store.js';
import {
  FRAME_HEADER_BYTES,
  HEADER_FILE,
  KEY_CHECK_AD,
  KEY_CHECK_INFO,
  LOG_FILE,
  LOG_HEADER_BYTES,
  RECORD_KEY_INFO,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  TEMP_SUFFIX,
  corrupt,
  decodeBatch,
  encodeBatch,
  encodeFrameHeader,
  encodeLogHeader,
  parseHeader,
  readFrameHeader,
  readLogHeader,
  recordAd,
  type StoreHeader,
} from './log-format.js';

export interface NodeFileStoreOptions {
  /** The directory of the store; created (mode 0700) when missing. One store per directory. */
  directory: string;
  /** The passphrase the store key is derived from (Argon2id). Not kept after opening. */
  passphrase: string | Uint8Array;
  /**
   * Argon2id parameters for a NEW store; an existing store uses those recorded in its header.
   * Tests may pass cheap ones (`{ iterations: 1, memoryKiB: 1024 }`).
   * @default ARGON2ID_DEFAULTS (RFC 9106 §4 second recommendation: t=3, m=64 MiB, p=1)
   */
  kdf?: Argon2idParams;
  /** The log is compacted only once it is larger than this (and than twice the live data). @default 4 MiB */
  compactionMinBytes?: number;
}

const DEFAULT_COMPACTION_MIN_BYTES = 4 * 1024 * 1024;
/** Smallest possible frame body: the nonce and tag around an empty batch (9 bytes). */
const MIN_SEALED_BYTES = RANDOM_NONCE_OVERHEAD + 9;
/** A log holding one empty snapshot frame. */
const EMPTY_LOG_BYTES = LOG_HEADER_BYTES + FRAME_HEADER_BYTES + MIN_SEALED_BYTES;
/** Per-entry bytes in a snapshot besides key and value: two u32 lengths. */
const ENTRY_OVERHEAD = 8;

const utf8 = new TextEncoder();

function ioFailed(what: string, err: unknown): ClientError {
  if (ClientError.is(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return new ClientError(
    ClientErrorCode.StorageFailed,
    `encrypted store: ${what} failed${typeof code === 'string' ? ` (${code})` : ''}: ` +
      'check the disk (free space, permissions) and reopen the store',
    { cause: err },
  );
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ENOENT';
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes a rename or a new file durable (POSIX). Windows cannot open a directory for fsync.
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Writes `name` through a temporary file: write, fsync, rename, fsync the directory. */
async function writeFileAtomic(dir: string, name: string, data: Uint8Array): Promise<void> {
  const temp = join(dir, name + TEMP_SUFFIX);
  const handle = await open(temp, 'w', 0o600);
  try {
    await writeAll(handle, data, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, name));
  await syncDirectory(dir);
}

/**
 * The record key and the key-check key from the passphrase (Argon2id, then HKDF-SHA-256 RFC 5869).
 * A string passphrase is normalised to NFC first (as RFC 8265's OpaqueString profile does), so
 * the same passphrase typed on systems that compose accents differently opens the store.
 */
async function deriveKeys(
  passphrase: string | Uint8Array,
  salt: Uint8Array,
  params: Required<Argon2idParams>,
): Promise<{ recordKey: Uint8Array; checkKey: Uint8Array }> {
  const input = typeof passphrase === 'string' ? passphrase.normalize('NFC') : passphrase;
  const root = await deriveKeyFromPassphrase(input, salt, params);
  try {
    return {
      recordKey: hkdf(root, undefined, RECORD_KEY_INFO, 32),
      checkKey: hkdf(root, undefined, KEY_CHECK_INFO, 32),
    };
  } finally {
    wipe(root);
  }
}

interface Frame {
  seq: number;
  plain: Uint8Array;
  end: number;
}

/** The frame at `offset` if it is complete and authenticates; undefined otherwise. */
async function tryFrame(
  buf: Uint8Array,
  offset: number,
  key: Uint8Array,
  seqWindow?: readonly [number, number],
): Promise<Frame | undefined> {
  const header = readFrameHeader(buf, offset);
  if (!header || header.seq < 0) return undefined;
  const { sealedLength, seq } = header;
  if (sealedLength < MIN_SEALED_BYTES || sealedLength > buf.length - offset - FRAME_HEADER_BYTES)
    return undefined;
  if (seqWindow && (seq < seqWindow[0] || seq > seqWindow[1])) return undefined;
  const start = offset + FRAME_HEADER_BYTES;
  try {
    const plain = await openWithRandomNonce(key, buf.subarray(start, start + sealedLength), recordAd(seq));
    return { seq, plain, end: start + sealedLength };
  } catch (err) {
    if (err instanceof CryptoError) return undefined;
    throw err;
  }
}

/**
 * True when some frame after `from` authenticates: then the bad frame at `from` is not a torn
 * tail but damage in the middle of the log. Only frames numbered after the bad one count (the
 * window keeps random ciphertext bytes from being tried as frames, almost always).
 */
async function authenticFrameAfter(
  buf: Uint8Array,
  from: number,
  key: Uint8Array,
  badSeq: number | undefined,
): Promise<boolean> {
  const maxFrames = Math.ceil((buf.length - from) / (FRAME_HEADER_BYTES + MIN_SEALED_BYTES)) + 1;
  const window: [number, number] =
    badSeq === undefined ? [0, Number.MAX_SAFE_INTEGER] : [badSeq + 1, badSeq + maxFrames];
  for (let offset = from + 1; offset + FRAME_HEADER_BYTES + MIN_SEALED_BYTES <= buf.length; offset++) {
    const frame = await tryFrame(buf, offset, key, window);
    if (frame) {
      wipe(frame.plain);
      return true;
    }
  }
  return false;
}

/**
 * @example
 * import { NodeFileStore } from '@usm/client/node';
 * const store = await NodeFileStore.open({ directory: './alice-state', passphrase });
 * await store.write({ put: [['ratchet/bob', state], ['inbox/42', message]], delete: ['pending/42'] });
 */
export class NodeFileStore implements ClientStore {
  static readonly #openDirectories = new Set<string>();

  readonly #dir: string;
  readonly #data: Map<string, Uint8Array>;
  readonly #compactionMinBytes: number;
  #recordKey: Uint8Array;
  #log: FileHandle;
  #size: number;
  #nextSeq: number;
  #liveBytes: number;
  readonly #queue = new SerialQueue();
  #closed = false;
  #failure: ClientError | undefined;

  private constructor(init: {
    dir: string;
    data: Map<string, Uint8Array>;
    recordKey: Uint8Array;
    log: FileHandle;
    size: number;
    nextSeq: number;
    compactionMinBytes: number;
  }) {
    this.#dir = init.dir;
    this.#data = init.data;
    this.#recordKey = init.recordKey;
    this.#log = init.log;
    this.#size = init.size;
    this.#nextSeq = init.nextSeq;
    this.#compactionMinBytes = init.compactionMinBytes;
    this.#liveBytes = 0;
    for (const [k, v] of init.data) this.#liveBytes += entrySize(k, v);
  }

  /**
   * Opens the store in `directory`, creating it when empty. Throws BAD_PASSPHRASE for a wrong
   * passphrase, CORRUPT_STORE for a damaged store, STORE_IN_USE when this process already has
   * it open, STORAGE_FAILED for I/O errors.
   */
  static async open(options: NodeFileStoreOptions): Promise<NodeFileStore> {
    if (typeof options?.directory !== 'string' || options.directory.length === 0) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        'NodeFileStore: pass the store directory as `directory`',
      );
    }
    const passphrase = options.passphrase;
    if (!(typeof passphrase === 'string' || passphrase instanceof Uint8Array) || passphrase.length === 0) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        'NodeFileStore: the passphrase must not be empty',
      );
    }
    const compactionMinBytes = options.compactionMinBytes ?? DEFAULT_COMPACTION_MIN_BYTES;
    if (!Number.isSafeInteger(compactionMinBytes) || compactionMinBytes < 0) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        `NodeFileStore: compactionMinBytes must be a whole number of bytes >= 0, got ${compactionMinBytes}`,
      );
    }
    const dir = resolvePath(options.directory);
    if (NodeFileStore.#openDirectories.has(dir)) {
      throw new ClientError(
        ClientErrorCode.StoreInUse,
        'NodeFileStore: this directory is already open in this process; close the other store first',
      );
    }
    NodeFileStore.#openDirectories.add(dir);
    let recordKey: Uint8Array | undefined;
    let log: FileHandle | undefined;
    try {
      await ready();
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await rm(join(dir, LOG_FILE + TEMP_SUFFIX), { force: true });
      await rm(join(dir, HEADER_FILE + TEMP_SUFFIX), { force: true });
      recordKey = await NodeFileStore.#unlock(dir, passphrase, options.kdf);

      let buf: Uint8Array;
      try {
        buf = await readFile(join(dir, LOG_FILE));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // A crash between writing the header and the first log leaves no log: start one.
        buf = encodeLogHeader(LOG_HEADER_BYTES);
        await writeFileAtomic(dir, LOG_FILE, buf);
      }
      const replayed = await replay(buf, recordKey);
      log = await open(join(dir, LOG_FILE), 'r+');
      if (replayed.end < buf.length) {
        // Cut the torn tail off, so the next frame follows the last authentic one.
        await log.truncate(replayed.end);
        await log.datasync();
      }
      return new NodeFileStore({
        dir,
        data: replayed.data,
        recordKey,
        log,
        size: replayed.end,
        nextSeq: replayed.nextSeq,
        compactionMinBytes,
      });
    } catch (err) {
      NodeFileStore.#openDirectories.delete(dir);
      if (recordKey) wipe(recordKey);
      await log?.close().catch(() => undefined);
      throw ioFailed('opening the store', err);
    }
  }

  /** Reads or creates the header; returns the record key once the passphrase is verified. */
  static async #unlock(
    dir: string,
    passphrase: string | Uint8Array,
    kdf: Argon2idParams | undefined,
  ): Promise<Uint8Array> {
    let text: string | undefined;
    try {
      text = await readFile(join(dir, HEADER_FILE), 'utf8');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (text === undefined) {
      try {
        await readFile(join(dir, LOG_FILE));
        throw corrupt(`${LOG_FILE} exists but ${HEADER_FILE} is missing`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return NodeFileStore.#create(dir, passphrase, kdf);
    }
    const header = parseHeader(text);
    const { salt, memoryKiB, iterations, parallelism } = header.kdf;
    const keys = await deriveKeys(passphrase, fromHex(salt), { memoryKiB, iterations, parallelism });
    try {
      await openWithRandomNonce(keys.checkKey, fromHex(header.keyCheck), KEY_CHECK_AD);
    } catch (err) {
      wipe(keys.recordKey);
      if (err instanceof CryptoError) {
        throw new ClientError(
          ClientErrorCode.BadPassphrase,
          `encrypted store: the passphrase does not open this store (or ${HEADER_FILE} was altered); check it and try again`,
        );
      }
      throw err;
    } finally {
      wipe(keys.checkKey);
    }
    return keys.recordKey;
  }

  static async #create(
    dir: string,
    passphrase: string | Uint8Array,
    kdf: Argon2idParams | undefined,
  ): Promise<Uint8Array> {
    const params = { ...ARGON2ID_DEFAULTS, ...kdf };
    const salt = randomBytes(ARGON2ID_SALT_BYTES);
    const keys = await deriveKeys(passphrase, salt, params);
    try {
      const header: StoreHeader = {
        format: STORE_FORMAT,
        version: STORE_FORMAT_VERSION,
        kdf: { algorithm: 'argon2id', ...params, salt: toHex(salt) },
        keyCheck: toHex(await sealWithRandomNonce(keys.checkKey, new Uint8Array(0), KEY_CHECK_AD)),
      };
      parseHeader(JSON.stringify(header)); // refuses parameters this library could not read back
      await writeFileAtomic(dir, LOG_FILE, encodeLogHeader(LOG_HEADER_BYTES));
      await writeFileAtomic(dir, HEADER_FILE, utf8.encode(JSON.stringify(header, null, 2) + '\n'));
      return keys.recordKey;
    } catch (err) {
      wipe(keys.recordKey);
      throw err;
    } finally {
      wipe(keys.checkKey);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#usable('get');
    assertKey(key);
    const value = this.#data.get(key);
    return value && new Uint8Array(value);
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    this.#usable('list');
    assertPrefix(prefix);
    const out: StoreEntry[] = [];
    for (const [key, value] of this.#data) if (key.startsWith(prefix)) out.push([key, new Uint8Array(value)]);
    return out.sort((a, b) => compareKeys(a[0], b[0]));
  }

  write(batch: WriteBatch): Promise<void> {
    return this.#exclusive(async () => {
      this.#usable('write');
      const checked = checkBatch(batch);
      if (checked.put.length === 0 && checked.delete.length === 0) return;
      if (this.#size > this.#compactionMinBytes && this.#size > 2 * (EMPTY_LOG_BYTES + this.#liveBytes)) {
        await this.#compact();
      }
      await this.#append(checked);
      this.#apply(checked);
    });
  }

  close(): Promise<void> {
    return this.#exclusive(async () => {
      if (this.#closed) return;
      this.#closed = true;
      NodeFileStore.#openDirectories.delete(this.#dir);
      wipe(this.#recordKey);
      for (const value of this.#data.values()) value.fill(0);
      this.#data.clear();
      try {
        await this.#log.close();
      } catch (err) {
        throw ioFailed('closing the log', err);
      }
    });
  }

  /** Runs write and close one at a time, in call order. */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(task);
  }

  #usable(what: string): void {
    if (this.#closed) throw storeClosed(what);
    if (this.#failure) throw this.#failure;
  }

  #apply(batch: CheckedBatch): void {
    for (const key of batch.delete) this.#remove(key);
    for (const [key, value] of batch.put) {
      this.#remove(key);
      this.#data.set(key, value);
      this.#liveBytes += entrySize(key, value);
    }
  }

  #remove(key: string): void {
    const old = this.#data.get(key);
    if (!old) return;
    this.#liveBytes -= entrySize(key, old);
    old.fill(0);
    this.#data.delete(key);
  }

  async #frame(batch: CheckedBatch, seq: number): Promise<Uint8Array> {
    const plain = encodeBatch(batch);
    try {
      const sealed = await sealWithRandomNonce(this.#recordKey, plain, recordAd(seq));
      const frame = new Uint8Array(FRAME_HEADER_BYTES + sealed.length);
      frame.set(encodeFrameHeader(sealed.length, seq), 0);
      frame.set(sealed, FRAME_HEADER_BYTES);
      return frame;
    } finally {
      wipe(plain);
    }
  }

  /** Appends one frame and makes it durable; on failure cuts it off and refuses further use. */
  async #append(batch: CheckedBatch): Promise<void> {
    const frame = await this.#frame(batch, this.#nextSeq);
    try {
      await writeAll(this.#log, frame, this.#size);
      await this.#log.datasync();
    } catch (err) {
      const failure = ioFailed('writing a batch', err);
      try {
        await this.#log.truncate(this.#size);
        await this.#log.datasync();
      } catch {
        // The failure below already tells the caller; reopening replays what is on disk.
      }
      this.#failure = new ClientError(
        ClientErrorCode.StorageFailed,
        'encrypted store: an earlier write failed; close and reopen the store before using it again',
        { cause: err },
      );
      throw failure;
    }
    this.#size += frame.length;
    this.#nextSeq++;
  }

  /** Replaces the log by one snapshot frame of the live entries (see the file comment). */
  async #compact(): Promise<void> {
    const entries = [...this.#data].sort((a, b) => compareKeys(a[0], b[0]));
    const frame = await this.#frame({ put: entries, delete: [] }, this.#nextSeq);
    const file = new Uint8Array(LOG_HEADER_BYTES + frame.length);
    file.set(encodeLogHeader(file.length), 0);
    file.set(frame, LOG_HEADER_BYTES);
    try {
      await writeFileAtomic(this.#dir, LOG_FILE, file);
    } catch (err) {
      // Before the rename nothing changed; the old log is still in place and in use.
      await rm(join(this.#dir, LOG_FILE + TEMP_SUFFIX), { force: true }).catch(() => undefined);
      throw ioFailed('compacting the log', err);
    }
    try {
      await this.#log.close();
      this.#log = await open(join(this.#dir, LOG_FILE), 'r+');
    } catch (err) {
      this.#failure = ioFailed('reopening the compacted log', err);
      throw this.#failure;
    }
    this.#size = file.length;
    this.#nextSeq++;
  }
}

function entrySize(key: string, value: Uint8Array): number {
  return ENTRY_OVERHEAD + utf8.encode(key).length + value.length;
}

/** Replays the log: the entries, where the authentic part ends, and the next frame number. */
async function replay(
  buf: Uint8Array,
  key: Uint8Array,
): Promise<{ data: Map<string, Uint8Array>; end: number; nextSeq: number }> {
  const snapshotEnd = readLogHeader(buf);
  const data = new Map<string, Uint8Array>();
  let offset = LOG_HEADER_BYTES;
  let expected: number | undefined;
  while (offset < buf.length) {
    const frame = await tryFrame(buf, offset, key);
    if (!frame) {
      if (await authenticFrameAfter(buf, offset, key, expected)) {
        throw corrupt(`a record in ${LOG_FILE} is damaged or was altered`);
      }
      break; // a torn tail (the batch being appended when the process stopped), unless checked below
    }
    if (expected !== undefined && frame.seq !== expected) {
      wipe(frame.plain);
      throw corrupt(`${LOG_FILE} is missing a record or has one out of order`);
    }
    const batch = decodeBatch(frame.plain);
    wipe(frame.plain);
    for (const k of batch.delete) data.delete(k);
    for (const [k, v] of batch.put) data.set(k, v);
    expected = frame.seq + 1;
    offset = frame.end;
  }
  // The snapshot was fsynced before the log was renamed into place: no crash can tear it.
  if (offset < snapshotEnd) throw corrupt(`the ${LOG_FILE} snapshot is damaged, altered or cut short`);
  return { data, end: offset, nextSeq: expected ?? 0 };
}
