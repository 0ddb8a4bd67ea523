/**
 * The on-disk format of NodeFileStore, kept free of node:fs so it can be tested and reused.
 *
 *   store.json   header: format version, Argon2id parameters and salt, a key check value
 *   store.log    MAGIC(8) | u64 snapshotEnd, then one frame per batch:
 *                  u32 sealedLength | u64 seq | sealed = nonce(12) | AES-256-GCM(batch) | tag(16)
 *
 * Each frame holds one whole batch (every key name and value of it, encrypted), so a batch is
 * one record: it is in the log entirely or not at all. `seq` counts frames; it is bound into
 * the associated data, so a frame cannot be moved, replayed or dropped from the middle of the
 * log without the next one failing to authenticate. The GCM tag is the record checksum: a
 * keyed 128-bit MAC, which catches every accidental change a CRC would and deliberate ones too.
 *
 * Keys: Argon2id(passphrase, salt) is the root; HKDF-SHA-256 (RFC 5869) separates it into the
 * record key and the key-check key, so the value that tests the passphrase never shares a key
 * with the data. Records use sealWithRandomNonce (a fresh random 96-bit nonce each, SP 800-38D
 * §8.2.2); a store seals far fewer than 2^32 records under one key.
 *
 * Every binary layout here is read and written with the shared BinaryReader/BinaryWriter of
 * @usm/crypto (big-endian, length-checked).
 */
import { BinaryReader, BinaryWriter, RANDOM_NONCE_OVERHEAD } from '@usm/crypto';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { CheckedBatch, StoreEntry } from './client-store.js';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export const HEADER_FILE = 'store.json';
export const LOG_FILE = 'store.log';
export const TEMP_SUFFIX = '.tmp';
export const STORE_FORMAT = 'usm-client-store';
export const STORE_FORMAT_VERSION = 1;

/** First bytes of every log file: "USMLOG", then the format version as two bytes. */
export const LOG_MAGIC = Uint8Array.of(0x55, 0x53, 0x4d, 0x4c, 0x4f, 0x47, 0x00, STORE_FORMAT_VERSION);
/**
 * MAGIC + u64 snapshotEnd: the offset up to which the file was written and fsynced before it was
 * renamed into place (the compaction snapshot). Bytes before it cannot be a torn write, so a bad
 * frame there is corruption, never a crash to recover from.
 */
export const LOG_HEADER_BYTES = 16;
/** u32 sealed length + u64 sequence number. */
export const FRAME_HEADER_BYTES = 12;

export const RECORD_KEY_INFO = utf8.encode('usm/client-store/v1/record-key');
export const KEY_CHECK_INFO = utf8.encode('usm/client-store/v1/key-check-key');
export const KEY_CHECK_AD = utf8.encode('usm/client-store/v1/key-check');
const RECORD_AD_LABEL = utf8.encode('usm/client-store/v1/record');

const BATCH_VERSION = 1;

export function corrupt(what: string): ClientError {
  return new ClientError(
    ClientErrorCode.CorruptStore,
    `encrypted store: ${what}; restore the directory from a backup or start a new store`,
  );
}

/** A reader whose failed checks (bytes missing or left over) are CORRUPT_STORE. */
const reader = (data: Uint8Array, what: string) =>
  new BinaryReader(data, what, (_fault, message) => corrupt(message));

/** The associated data of frame number `seq`: a label and the sequence number. */
export function recordAd(seq: number): Uint8Array {
  return new BinaryWriter(RECORD_AD_LABEL.length + 8).bytes(RECORD_AD_LABEL).u64(seq).finish();
}

export function encodeLogHeader(snapshotEnd: number): Uint8Array {
  return new BinaryWriter(LOG_HEADER_BYTES).bytes(LOG_MAGIC).u64(snapshotEnd).finish();
}

/** The snapshotEnd of a log file; CORRUPT_STORE unless the file starts with a valid log header. */
export function readLogHeader(buf: Uint8Array): number {
  const r = reader(buf.subarray(0, LOG_HEADER_BYTES), `${LOG_FILE} header`);
  const magic = r.fixed(LOG_MAGIC.length, 'magic');
  if (LOG_MAGIC.some((b, i) => magic[i] !== b)) {
    throw corrupt(`${LOG_FILE} does not start with the log header`);
  }
  const end = r.u64('snapshot end');
  if (end < LOG_HEADER_BYTES || end > buf.length) {
    throw corrupt(`${LOG_FILE} has a log header that does not match its length`);
  }
  return end;
}

export function encodeFrameHeader(sealedLength: number, seq: number): Uint8Array {
  return new BinaryWriter(FRAME_HEADER_BYTES).u32(sealedLength).u64(seq).finish();
}

/**
 * Reads a frame header at `offset`, or undefined if fewer than FRAME_HEADER_BYTES remain. A
 * sequence number past 2^53 - 1 (no frame has one) reads as -1.
 */
export function readFrameHeader(
  buf: Uint8Array,
  offset: number,
): { sealedLength: number; seq: number } | undefined {
  if (buf.length - offset < FRAME_HEADER_BYTES) return undefined;
  const r = reader(buf.subarray(offset, offset + FRAME_HEADER_BYTES), 'frame header');
  const sealedLength = r.u32('sealed length');
  try {
    return { sealedLength, seq: r.u64('sequence number') };
  } catch (err) {
    if (!ClientError.is(err, ClientErrorCode.CorruptStore)) throw err;
    return { sealedLength, seq: -1 };
  }
}

/** A batch as plaintext: u8 version | u32 puts | u32 deletes | (u32 len, key, u32 len, value)* | (u32 len, key)*. */
export function encodeBatch(batch: CheckedBatch): Uint8Array {
  const putKeys = batch.put.map(([k]) => utf8.encode(k));
  const delKeys = batch.delete.map((k) => utf8.encode(k));
  let size = 9;
  batch.put.forEach(([, v], i) => (size += 8 + putKeys[i]!.length + v.length));
  for (const k of delKeys) size += 4 + k.length;
  // One buffer of the exact size: the caller wipes it, and a growing writer would leave
  // unwiped copies of the plaintext behind.
  const w = new BinaryWriter(size).u8(BATCH_VERSION).u32(batch.put.length).u32(batch.delete.length);
  batch.put.forEach(([, v], i) => w.u32(putKeys[i]!.length).bytes(putKeys[i]!).u32(v.length).bytes(v));
  for (const k of delKeys) w.u32(k.length).bytes(k);
  return w.finish();
}

/** The inverse of encodeBatch; CORRUPT_STORE on any inconsistency (after the tag verified, a bug or a foreign file). */
export function decodeBatch(plain: Uint8Array): { put: StoreEntry[]; delete: string[] } {
  const r = reader(plain, `${LOG_FILE} record`);
  if (r.u8('version') !== BATCH_VERSION) throw corrupt('a record has an unknown layout');
  const putCount = r.u32('put count');
  const delCount = r.u32('delete count');
  const key = (): string => {
    const raw = r.fixed(r.u32('key length'), 'key');
    try {
      return utf8Strict.decode(raw);
    } catch {
      throw corrupt('a record holds a key that is not UTF-8');
    } finally {
      raw.fill(0); // a copy of the plaintext the caller wipes
    }
  };
  const put: StoreEntry[] = [];
  for (let i = 0; i < putCount; i++) {
    const k = key();
    put.push([k, r.fixed(r.u32('value length'), 'value')]);
  }
  const del: string[] = [];
  for (let i = 0; i < delCount; i++) del.push(key());
  r.end();
  return { put, delete: del };
}

/** The header file's content. */
export interface StoreHeader {
  format: typeof STORE_FORMAT;
  version: number;
  kdf: { algorithm: 'argon2id'; memoryKiB: number; iterations: number; parallelism: number; salt: string };
  /** Hex of sealWithRandomNonce(keyCheckKey, empty, KEY_CHECK_AD). */
  keyCheck: string;
}

/**
 * Upper bounds on header parameters, so an altered header cannot make opening allocate 4 GiB
 * or run for hours: 4 GiB of memory, 64 passes, 16 lanes are far above any sane setting.
 */
const KDF_LIMITS = { memoryKiB: 4 * 1024 * 1024, iterations: 64, parallelism: 16 };

export function parseHeader(text: string): StoreHeader {
  let h: unknown;
  try {
    h = JSON.parse(text);
  } catch {
    throw corrupt(`${HEADER_FILE} is not valid JSON`);
  }
  const o = h as Partial<StoreHeader> | null;
  if (typeof o !== 'object' || o === null || o.format !== STORE_FORMAT) {
    throw corrupt(`${HEADER_FILE} is not a client store header`);
  }
  if (o.version !== STORE_FORMAT_VERSION) {
    throw corrupt(
      `${HEADER_FILE} has format version ${String(o.version)}; this library reads ${STORE_FORMAT_VERSION}`,
    );
  }
  const k = o.kdf;
  const intIn = (v: unknown, lo: number, hi: number) =>
    Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (
    typeof k !== 'object' ||
    k === null ||
    k.algorithm !== 'argon2id' ||
    !intIn(k.memoryKiB, 8, KDF_LIMITS.memoryKiB) ||
    !intIn(k.iterations, 1, KDF_LIMITS.iterations) ||
    !intIn(k.parallelism, 1, KDF_LIMITS.parallelism) ||
    typeof k.salt !== 'string' ||
    !/^[0-9a-f]{32}$/.test(k.salt) ||
    typeof o.keyCheck !== 'string' ||
    o.keyCheck.length !== 2 * RANDOM_NONCE_OVERHEAD ||
    !/^[0-9a-f]+$/.test(o.keyCheck)
  ) {
    throw corrupt(`${HEADER_FILE} has missing or out-of-range key derivation parameters`);
  }
  return o as StoreHeader;
}
