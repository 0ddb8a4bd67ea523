import { describe, expect, it } from '@jest/globals';
import type { AddressString, MessageIdString } from '@usm/protocol';
import { type InboxEntry, decodeInboxEntry, encodeInboxEntry } from './client-records.js';
import { ClientError, ClientErrorCode } from './errors.js';

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
