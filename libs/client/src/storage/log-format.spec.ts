import { describe, expect, it } from '@jest/globals';
import { fromHex, toHex } from '@usm/crypto';
import { ClientErrorCode } from '../errors.js';
import {
  FRAME_HEADER_BYTES,
  LOG_HEADER_BYTES,
  decodeBatch,
  encodeBatch,
  encodeFrameHeader,
  encodeLogHeader,
  readFrameHeader,
  readLogHeader,
  recordAd,
} from './log-format.js';
import { codeOf } from '../error-code.test.js';

// Golden vectors: the bytes existing store.log files hold (or, for the associated data, that
// their tags were computed over). They must never change: a store written by an earlier version
// has to open.
const MAGIC = '55534d4c4f470001';
const AD_LABEL = toHex(new TextEncoder().encode('usm/client-store/v1/record'));
const BATCH = {
  put: [
    ['k', Uint8Array.of(1, 2)],
    ['é/x', new Uint8Array(0)],
  ] as [string, Uint8Array][],
  delete: ['gone'],
};
const BATCH_HEX =
  '01' + // version
  '00000002' + // puts
  '00000001' + // deletes
  '000000016b' + // put key 'k'
  '000000020102' + // its value
  '00000004c3a92f78' + // put key 'é/x'
  '00000000' + // its value (empty)
  '00000004676f6e65'; // delete key 'gone'

describe('store.log: the stored layout', () => {
  it('encodes the log header, frame headers and associated data to the golden bytes', () => {
    expect(toHex(encodeLogHeader(16))).toBe(MAGIC + '0000000000000010');
    expect(toHex(encodeLogHeader(123_456_789))).toBe(MAGIC + '00000000075bcd15');
    expect(toHex(encodeFrameHeader(44, 0))).toBe('0000002c' + '0000000000000000');
    expect(toHex(encodeFrameHeader(0xffff_ffff, Number.MAX_SAFE_INTEGER))).toBe(
      'ffffffff' + '001fffffffffffff',
    );
    expect(toHex(recordAd(0))).toBe(AD_LABEL + '0000000000000000');
    expect(toHex(recordAd(2 ** 40 + 5))).toBe(AD_LABEL + '0000010000000005');
  });

  it('encodes a batch to the golden bytes and decodes them back', () => {
    expect(toHex(encodeBatch(BATCH))).toBe(BATCH_HEX);
    expect(decodeBatch(fromHex(BATCH_HEX))).toEqual(BATCH);
    expect(toHex(encodeBatch({ put: [], delete: [] }))).toBe('01' + '00000000' + '00000000');
    expect(decodeBatch(fromHex('01' + '00000000' + '00000000'))).toEqual({ put: [], delete: [] });
  });

  it('decodes values that outlive the plaintext they came from (the caller wipes it)', () => {
    const plain = fromHex('ffff' + BATCH_HEX + 'ffff');
    const batch = decodeBatch(plain.subarray(2, plain.length - 2));
    plain.fill(0);
    expect(batch).toEqual(BATCH);
  });

  it('reads the log header of a file', () => {
    const file = fromHex(MAGIC + '0000000000000014' + 'aabbccdd');
    expect(readLogHeader(file)).toBe(20);
    expect(readLogHeader(fromHex(MAGIC + '0000000000000010'))).toBe(LOG_HEADER_BYTES);
  });

  it('refuses a file without a valid log header (CORRUPT_STORE)', () => {
    const damaged = [
      '',
      MAGIC + '00000000000010', // cut short
      '00' + MAGIC.slice(2) + '0000000000000010', // another magic
      MAGIC.slice(0, -2) + '02' + '0000000000000010', // another format version
      MAGIC + '000000000000000f', // ends inside the header
      MAGIC + '0000000000000011', // ends past the file
      MAGIC + '8000000000000000', // past any file
    ];
    for (const hex of damaged)
      expect(codeOf(() => readLogHeader(fromHex(hex)))).toBe(ClientErrorCode.CorruptStore);
  });

  it('reads a frame header at an offset, or nothing when it is cut short', () => {
    const buf = fromHex('aabb' + '0000002c' + '0000000000000007' + 'cc');
    expect(readFrameHeader(buf, 2)).toEqual({ sealedLength: 44, seq: 7 });
    expect(readFrameHeader(buf, 4)).toBeUndefined();
    expect(readFrameHeader(buf.subarray(0, 2 + FRAME_HEADER_BYTES - 1), 2)).toBeUndefined();
    expect(readFrameHeader(fromHex('ffffffff' + '001fffffffffffff'), 0)).toEqual({
      sealedLength: 0xffff_ffff,
      seq: Number.MAX_SAFE_INTEGER,
    });
  });

  it('reads a frame number past 2^53 - 1 as -1 (no frame has one)', () => {
    expect(readFrameHeader(fromHex('0000002c' + '0020000000000000'), 0)).toEqual({
      sealedLength: 44,
      seq: -1,
    });
    expect(readFrameHeader(fromHex('0000002c' + 'ffffffffffffffff'), 0)).toEqual({
      sealedLength: 44,
      seq: -1,
    });
  });

  it('refuses a damaged batch (CORRUPT_STORE)', () => {
    const damaged = [
      '',
      '01' + '00000000', // cut inside the counts
      '02' + BATCH_HEX.slice(2), // an unknown version
      BATCH_HEX.slice(0, -2), // cut inside the last key
      BATCH_HEX.slice(0, 20), // cut inside a length
      BATCH_HEX + '00', // a byte after the last key
      '01' + 'ffffffff' + '00000000', // more puts than bytes
      '01' + '00000000' + '00000001' + '00000002' + 'c328', // a key that is not UTF-8
      '01' + '00000001' + '00000000' + '00000001' + '6b' + '00000003' + '0102', // a value cut short
    ];
    for (const hex of damaged)
      expect(codeOf(() => decodeBatch(fromHex(hex)))).toBe(ClientErrorCode.CorruptStore);
  });
});
