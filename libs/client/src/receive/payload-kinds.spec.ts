import { describe, expect, it } from '@jest/globals';
import { type AddressString, type MessageIdString, PayloadKind } from '@usm/protocol';
import { effectOf } from './payload-kinds.js';

const head = { peer: 'p.1' as AddressString, id: 'i'.repeat(22) as MessageIdString, receivedAt: 5 };
const at = { sequence: 3, sentAt: 4 };

describe('payload kinds', () => {
  it('turns each kind into an inbox entry or a restart; an unknown kind keeps its place as `unsupported`', () => {
    expect(effectOf({ kind: PayloadKind.Text, ...at, text: 'hi' }, head)).toEqual({
      entry: { ...head, ...at, kind: 'text', text: 'hi' },
    });
    expect(effectOf({ kind: PayloadKind.Bytes, ...at, bytes: Uint8Array.of(1) }, head)).toEqual({
      entry: { ...head, ...at, kind: 'bytes', bytes: Uint8Array.of(1) },
    });
    expect(
      effectOf({ kind: PayloadKind.DeliveryReceipt, ...at, messageIds: [new Uint8Array(16)] }, head),
    ).toEqual({
      entry: { ...head, ...at, kind: 'receipt', ids: ['AAAAAAAAAAAAAAAAAAAAAA'] },
    });
    expect(effectOf({ kind: PayloadKind.SessionReset, ...at }, head)).toEqual({ restartAt: 4 });
    expect(effectOf({ kind: 'unknown', rawKind: 77, ...at, body: Uint8Array.of(9) }, head)).toEqual({
      entry: { ...head, ...at, kind: 'unsupported', rawKind: 77 },
    });
  });
});
