import { describe, expect, it } from '@jest/globals';
import { fromHex, toHex } from '@usm/crypto';
import { ClientErrorCode } from '../errors.js';
import { type OutboxMeta, bodyKey, decodeMeta, encodeMeta, metaKey, seqOfMetaKey } from './outbox-record.js';
import { codeOf } from '../error-code.test.js';

const T0 = 1_800_000_000_000;
const recipient = 'A'.repeat(43).concat('.1');

// Golden vectors: the bytes existing outboxes hold. They must never change (an outbox written by
// an earlier version has to load); a new layout gets a new version byte instead.
const GOLDEN: readonly (readonly [OutboxMeta, string])[] = [
  [
    {
      seq: 5,
      messageId: Uint8Array.from({ length: 16 }, (_, i) => i),
      recipient,
      attempts: 3,
      nextAttemptAt: T0 + 1_000,
      expiresAt: T0 + 604_800_000,
      enqueuedAt: T0,
    },
    '01' + // version
      '000102030405060708090a0b0c0d0e0f' + // message id
      '427a3185c5000000' + // enqueuedAt
      '427a3185c53e8000' + // nextAttemptAt
      '427a33c68d400000' + // expiresAt
      '00000003' + // attempts
      '002d' + // recipient length
      '41'.repeat(43) +
      '2e31',
  ],
  [
    {
      seq: 0,
      messageId: new Uint8Array(16).fill(0xff),
      recipient: 'é',
      attempts: 0,
      nextAttemptAt: 0,
      expiresAt: Number.MAX_SAFE_INTEGER,
      enqueuedAt: 0.5,
    },
    '01' +
      'ff'.repeat(16) +
      '3fe0000000000000' +
      '0000000000000000' +
      '433fffffffffffff' +
      '00000000' +
      '0002' +
      'c3a9',
  ],
];

describe('outbox metadata: the stored layout', () => {
  it('encodes to the golden bytes and decodes them back', () => {
    for (const [meta, hex] of GOLDEN) {
      expect(toHex(encodeMeta(meta))).toBe(hex);
      expect(decodeMeta(meta.seq, fromHex(hex))).toEqual(meta);
    }
  });

  it('decodes from a view into a larger buffer, and the message id is a copy', () => {
    const [meta, hex] = GOLDEN[0]!;
    const padded = fromHex('ffff' + hex + 'ffff');
    const decoded = decodeMeta(meta.seq, padded.subarray(2, padded.length - 2));
    padded.fill(0);
    expect(decoded).toEqual(meta);
  });

  it('names its keys after the sequence number in 16 hex digits', () => {
    expect(metaKey('outbox/', 0x1f)).toBe('outbox/m/000000000000001f');
    expect(bodyKey('outbox/', 0x1f)).toBe('outbox/b/000000000000001f');
    expect(seqOfMetaKey('outbox/', 'outbox/m/000000000000001f')).toBe(0x1f);
    expect(codeOf(() => seqOfMetaKey('outbox/', 'outbox/b/000000000000001f'))).toBe(
      ClientErrorCode.CorruptStore,
    );
  });

  it('refuses damaged metadata (CORRUPT_STORE)', () => {
    const hex = GOLDEN[0]![1];
    const damaged = [
      '',
      hex.slice(0, 40), // cut inside the fixed part
      hex.slice(0, -2), // cut inside the recipient
      hex + '00', // a byte after the recipient
      '02' + hex.slice(2), // an unknown version
      hex.slice(0, 34) + '7ff8000000000000' + hex.slice(50), // enqueuedAt NaN
      hex.slice(0, 50) + 'fff0000000000000' + hex.slice(66), // nextAttemptAt -Infinity
      hex.slice(0, 66) + '7ff0000000000000' + hex.slice(82), // expiresAt Infinity
      hex.slice(0, 90) + '0002' + 'c328', // a recipient that is not UTF-8
    ];
    for (const bad of damaged) {
      expect(codeOf(() => decodeMeta(5, fromHex(bad)))).toBe(ClientErrorCode.CorruptStore);
    }
  });
});
