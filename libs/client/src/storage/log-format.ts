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
 */
import { RANDOM_NONCE_OVERHEAD } from '@usm/crypto';
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

/** The associated data of frame number `seq`: a label and the sequence number. */
export function recordAd(seq: number): Uint8Array {
  const ad = new Uint8Array(RECORD_AD_LABEL.length + 8);
  ad.set(RECORD_AD_LABEL, 0);
  new DataView(ad.buffer).setBigUint64(RECORD_AD_LABEL.length, BigInt(seq), false);
  return ad;
}

export function encodeLogHeader(snapshotEnd: number): Uint8Array {
  const out = new Uint8Array(LOG_HEADER_BYTES);
  out.set(LOG_MAGIC, 0);
  new DataView(out.buffer).setBigUint64(LOG_MAGIC.length, BigInt(snapshotEnd), false);
  return out;
}

/** The snapshotEnd of a log file; CORRUPT_STORE unless the file starts with a valid log header. */
export function readLogHeader(buf: Uint8Array): number {
  if (buf.length < LOG_HEADER_BYTES || LOG_MAGIC.some((b, i) => buf[i] !== b)) {
    throw corrupt(`${LOG_FILE} does not start with the log header`);
  }
  const end = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(LOG_MAGIC.length, false);
  if (end < BigInt(LOG_HEADER_BYTES) || end > BigInt(buf.length)) {
    throw corrupt(`${LOG_FILE} has a log header that does not match its length`);
  }
  return Number(end);
}

export function encodeFrameHeader(sealedLength: number, seq: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, sealedLength, false);
  view.setBigUint64(4, BigInt(seq), false);
  return out;
}

/** Reads a frame header at `offset`, or undefined if fewer than FRAME_HEADER_BYTES remain. */
export function readFrameHeader(
  buf: Uint8Array,
  offset: number,
): { sealedLength: number; seq: number } | undefined {
  if (buf.length - offset < FRAME_HEADER_BYTES) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset + offset, FRAME_HEADER_BYTES);
  const seq = view.getBigUint64(4, false);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return { sealedLength: view.getUint32(0, false), seq: -1 };
  return { sealedLength: view.getUint32(0, false), seq: Number(seq) };
}

/** A batch as plaintext: u8 version | u32 puts | u32 deletes | (u32 len, key, u32 len, value)* | (u32 len, key)*. */
export function encodeBatch(batch: CheckedBatch): Uint8Array {
  const keys = (entries: readonly string[]) => entries.map((k) => utf8.encode(k));
  const putKeys = keys(batch.put.map(([k]) => k));
  const delKeys = keys(batch.delete);
  let size = 9;
  batch.put.forEach(([, v], i) => (size += 8 + putKeys[i]!.length + v.length));
  for (const k of delKeys) size += 4 + k.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let o = 0;
  view.setUint8(o, BATCH_VERSION);
  view.setUint32(1, batch.put.length, false);
  view.setUint32(5, batch.delete.length, false);
  o = 9;
  const bytes = (b: Uint8Array) => {
    view.setUint32(o, b.length, false);
    out.set(b, o + 4);
    o += 4 + b.length;
  };
  batch.put.forEach(([, v], i) => {
    bytes(putKeys[i]!);
    bytes(v);
  });
  for (const k of delKeys) bytes(k);
  return out;
}

/** The inverse of encodeBatch; CORRUPT_STORE on any inconsistency (after the tag verified, a bug or a foreign file). */
export function decodeBatch(plain: Uint8Array): { put: StoreEntry[]; delete: string[] } {
  const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  if (plain.length < 9 || view.getUint8(0) !== BATCH_VERSION) throw corrupt('a record has an unknown layout');
  const putCount = view.getUint32(1, false);
  const delCount = view.getUint32(5, false);
  let o = 9;
  const bytes = (): Uint8Array => {
    if (plain.length - o < 4) throw corrupt('a record is cut short');
    const n = view.getUint32(o, false);
    if (plain.length - o - 4 < n) throw corrupt('a record is cut short');
    const b = plain.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    return b;
  };
  const key = (): string => {
    try {
      return utf8Strict.decode(bytes());
    } catch (err) {
      if (ClientError.is(err)) throw err;
      throw corrupt('a record holds a key that is not UTF-8');
    }
  };
  const put: StoreEntry[] = [];
  for (let i = 0; i < putCount; i++) {
    const k = key();
    put.push([k, bytes().slice()]);
  }
  const del: string[] = [];
  for (let i = 0; i < delCount; i++) del.push(key());
  if (o !== plain.length) throw corrupt('a record has trailing bytes');
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
