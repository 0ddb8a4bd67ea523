import { describe, expect, it } from '@jest/globals';
import { fromHex, toHex } from '@usm/crypto';
import type { AddressString, MessageIdString } from '@usm/protocol';
import {
  type InboxEntry,
  decodeCounter,
  decodeInboxEntry,
  encodeCounter,
  encodeInboxEntry,
} from './client-records.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { codeOf } from './error-code.test.js';

const peer = 'A'.repeat(43).concat('.1') as AddressString;
const id = 'B'.repeat(22) as MessageIdString;
const head = { peer, id, sequence: 7, sentAt: 1_800_000_000_000, receivedAt: 1_800_000_000_500 };

describe('inbox entries', () => {
  it('round-trip every kind', () => {
    const entries: InboxEntry[] = [
      { ...head, kind: 'text', text: 'héllo' },
      { ...head, kind: 'bytes', bytes: Uint8Array.of(0, 1, 255) },
      { ...head, kind: 'receipt', ids: [id, 'C'.repeat(22) as MessageIdString] },
      { ...head, kind: 'unsupported', rawKind: 200 },
    ];
    for (const e of entries) expect(decodeInboxEntry(peer, encodeInboxEntry(e))).toEqual(e);
  });

  it('refuses an unsupported entry whose body is not one kind byte (CORRUPT_STORE)', () => {
    const bytes = encodeInboxEntry({ ...head, kind: 'unsupported', rawKind: 9 });
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    new DataView(longer.buffer).setUint32(44, 2);
    const err = (() => {
      try {
        decodeInboxEntry(peer, longer);
      } catch (e) {
        return e;
      }
    })();
    expect(ClientError.is(err, ClientErrorCode.CorruptStore)).toBe(true);
  });
});

// Golden vectors: the bytes existing stores hold. They must never change (a store written by an
// earlier version has to load); a new layout gets a new version byte instead.
const COUNTERS: readonly (readonly [number, string])[] = [
  [0, '01' + '0000000000000000'],
  [7, '01' + '401c000000000000'],
  [0x1_0000_0000, '01' + '41f0000000000000'],
];

// version | kind | sequence 7 | sentAt | receivedAt | id 'B' x 22 ...
const INBOX_HEAD = (kind: string) =>
  '01' + kind + '00000007' + '427a3185c5000000' + '427a3185c51f4000' + '42'.repeat(22);
// ... | body length | body
const INBOX: readonly (readonly [InboxEntry, string])[] = [
  [{ ...head, kind: 'text', text: 'héllo' }, INBOX_HEAD('01') + '00000006' + '68c3a96c6c6f'],
  [{ ...head, kind: 'text', text: '' }, INBOX_HEAD('01') + '00000000'],
  [{ ...head, kind: 'bytes', bytes: Uint8Array.of(0, 1, 255) }, INBOX_HEAD('02') + '00000003' + '0001ff'],
  [
    { ...head, kind: 'receipt', ids: [id, 'C'.repeat(22) as MessageIdString] },
    INBOX_HEAD('03') + '0000002c' + '42'.repeat(22) + '43'.repeat(22),
  ],
  [{ ...head, kind: 'unsupported', rawKind: 200 }, INBOX_HEAD('04') + '00000001' + 'c8'],
];

describe('conversation counters: the stored layout', () => {
  it('encodes to the golden bytes and decodes them back', () => {
    for (const [value, hex] of COUNTERS) {
      expect(toHex(encodeCounter(value))).toBe(hex);
      expect(decodeCounter(fromHex(hex))).toBe(value);
    }
  });

  it('refuses a wrong version, a wrong length, or a value that is not a counter (CORRUPT_STORE)', () => {
    const damaged = [
      '',
      '02' + '401c000000000000',
      '01' + '401c0000000000',
      '01' + '401c000000000000' + '00',
      '01' + 'bff0000000000000', // -1
      '01' + '3fe0000000000000', // 0.5
      '01' + '41f0000000100000', // 2^32 + 1
      '01' + '7ff8000000000000', // NaN
    ];
    for (const hex of damaged)
      expect(codeOf(() => decodeCounter(fromHex(hex)))).toBe(ClientErrorCode.CorruptStore);
  });
});

describe('inbox entries: the stored layout', () => {
  it('encodes every kind to the golden bytes and decodes them back', () => {
    for (const [entry, hex] of INBOX) {
      expect(toHex(encodeInboxEntry(entry))).toBe(hex);
      expect(decodeInboxEntry(peer, fromHex(hex))).toEqual(entry);
    }
  });

  it('decodes from a view into a larger buffer', () => {
    const hex = INBOX[0]![1];
    const padded = fromHex('ffff' + hex + 'ffff');
    expect(decodeInboxEntry(peer, padded.subarray(2, padded.length - 2))).toEqual(INBOX[0]![0]);
  });

  it('refuses a damaged entry (CORRUPT_STORE)', () => {
    const text = INBOX[0]![1];
    const damaged = [
      '',
      text.slice(0, 40), // cut inside the fixed part
      text.slice(0, -2), // cut inside the body
      text + '00', // a byte after the body
      '02' + text.slice(2), // an unknown version
      INBOX_HEAD('09') + '00000000', // an unknown kind
      INBOX_HEAD('01') + '00000007' + '68c3a96c6c6f', // a body length past the end
      INBOX_HEAD('01') + '00000002' + 'c328', // text that is not UTF-8
      INBOX_HEAD('03') + '00000015' + '42'.repeat(21), // a receipt id cut short
      INBOX_HEAD('04') + '00000000', // an unsupported entry without its kind byte
      text.slice(0, 12) + '7ff0000000000000' + text.slice(28), // sentAt infinite
      text.slice(0, 28) + '7ff8000000000000' + text.slice(44), // receivedAt NaN
    ];
    for (const hex of damaged) {
      expect(codeOf(() => decodeInboxEntry(peer, fromHex(hex)))).toBe(ClientErrorCode.CorruptStore);
    }
  });
});
