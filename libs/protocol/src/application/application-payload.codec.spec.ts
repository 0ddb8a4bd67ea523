import fc from 'fast-check';
import { ProtocolErrorCode } from '../errors.js';
import { applicationPayload } from '../../test/arbitraries.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { arbitraryBytes, checkDecoder, fuzz, largestSlice, mutated, newStats } from '../../test/fuzz.js';
import { MAX_APPLICATION_PAYLOAD_BYTES, MAX_RECEIPT_IDS } from '../limits.js';
import {
  APPLICATION_HEADER_BYTES,
  MAX_APPLICATION_BODY_BYTES,
  PayloadKind,
  decodeApplicationPayload,
  encodeApplicationPayload,
  openApplicationPayload,
  sealApplicationPayload,
  type ApplicationPayload,
} from './application-payload.codec.js';

const header = { sequence: 5, sentAt: 1_700_000_000_123 };

describe('application payload', () => {
  it('has the documented layout', () => {
    const bytes = encodeApplicationPayload({ kind: PayloadKind.Text, ...header, text: 'hé' });
    expect(Array.from(bytes)).toEqual([
      1, 1, 0, 0, 0, 5, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, 0, 0, 0, 3, 0x68, 0xc3, 0xa9,
    ]);
    const receipt = encodeApplicationPayload({
      kind: PayloadKind.DeliveryReceipt,
      ...header,
      messageIds: [new Uint8Array(16).fill(1), new Uint8Array(16).fill(2)],
    });
    expect(receipt.length).toBe(APPLICATION_HEADER_BYTES + 2 + 32);
    expect(Array.from(receipt.subarray(14, 16))).toEqual([0, 2]);
    expect(encodeApplicationPayload({ kind: PayloadKind.SessionReset, ...header }).length).toBe(14);
  });

  it('round-trips every kind, through padding too', () => {
    fc.assert(
      fc.property(applicationPayload, (p) => {
        const bytes = encodeApplicationPayload(p);
        expect(decodeApplicationPayload(bytes)).toEqual(p);
        const sealed = sealApplicationPayload(p);
        expect([256, 1024]).toContain(sealed.length);
        expect(openApplicationPayload(sealed)).toEqual(p);
      }),
    );
  });

  it('keeps a leading byte-order mark and refuses unpaired surrogates and invalid UTF-8', () => {
    const bom = { kind: PayloadKind.Text as const, ...header, text: '\uFEFFhi' };
    expect(decodeApplicationPayload(encodeApplicationPayload(bom))).toEqual(bom);
    expectProtocolError(
      () => encodeApplicationPayload({ kind: PayloadKind.Text, ...header, text: 'a\uD800b' }),
      ProtocolErrorCode.Malformed,
      'application payload: text contains an unpaired surrogate',
    );
    const bad = encodeApplicationPayload({ kind: PayloadKind.Text, ...header, text: 'ab' });
    bad[bad.length - 1] = 0xff;
    expectProtocolError(
      () => decodeApplicationPayload(bad),
      ProtocolErrorCode.Malformed,
      'application payload: text is not valid UTF-8',
    );
  });

  it('bounds bodies, receipts and the whole payload', () => {
    const max = encodeApplicationPayload({
      kind: PayloadKind.Bytes,
      ...header,
      bytes: new Uint8Array(MAX_APPLICATION_BODY_BYTES),
    });
    expect(max.length).toBe(MAX_APPLICATION_PAYLOAD_BYTES);
    expect(sealApplicationPayload(decodeApplicationPayload(max) as ApplicationPayload).length).toBe(61440);
    expectProtocolError(
      () =>
        encodeApplicationPayload({
          kind: PayloadKind.Bytes,
          ...header,
          bytes: new Uint8Array(MAX_APPLICATION_BODY_BYTES + 1),
        }),
      ProtocolErrorCode.TooLarge,
      `application payload: body of ${MAX_APPLICATION_BODY_BYTES + 1} bytes, the limit is ${MAX_APPLICATION_BODY_BYTES}`,
    );
    expectProtocolError(
      () =>
        encodeApplicationPayload({
          kind: PayloadKind.DeliveryReceipt,
          ...header,
          messageIds: Array.from({ length: MAX_RECEIPT_IDS + 1 }, () => new Uint8Array(16)),
        }),
      ProtocolErrorCode.TooLarge,
      `application payload: ${MAX_RECEIPT_IDS + 1} receipt ids, the limit is ${MAX_RECEIPT_IDS}`,
    );
    expectProtocolError(
      () => decodeApplicationPayload(new Uint8Array(MAX_APPLICATION_PAYLOAD_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
      `application payload: ${MAX_APPLICATION_PAYLOAD_BYTES + 1} bytes, the limit is ${MAX_APPLICATION_PAYLOAD_BYTES}`,
    );
  });

  it('refuses huge claimed lengths and counts before allocating', () => {
    const text = encodeApplicationPayload({ kind: PayloadKind.Text, ...header, text: '' });
    new DataView(text.buffer).setUint32(14, 2 ** 31, false);
    const slice = largestSlice(() =>
      expectProtocolError(
        () => decodeApplicationPayload(text),
        ProtocolErrorCode.TooLarge,
        `application payload: text claims ${2 ** 31} bytes, the limit is ${MAX_APPLICATION_BODY_BYTES}`,
      ),
    );
    expect(slice).toBe(0);
    const receipt = encodeApplicationPayload({
      kind: PayloadKind.DeliveryReceipt,
      ...header,
      messageIds: [new Uint8Array(16)],
    });
    new DataView(receipt.buffer).setUint16(14, 400, false);
    expectProtocolError(
      () => decodeApplicationPayload(receipt),
      ProtocolErrorCode.Malformed,
      'application payload: receipt claims 400 ids, 16 bytes left',
    );
  });

  it('refuses bad headers', () => {
    const bytes = encodeApplicationPayload({ kind: PayloadKind.SessionReset, ...header });
    const v9 = bytes.slice();
    v9[0] = 9;
    expectProtocolError(
      () => decodeApplicationPayload(v9),
      ProtocolErrorCode.UnsupportedVersion,
      'application payload: version 9 is not supported (expected 1)',
    );
    const time = bytes.slice();
    time[6] = 0x00;
    time[7] = 0x20; // 2^53
    expectProtocolError(
      () => decodeApplicationPayload(time),
      ProtocolErrorCode.Malformed,
      'application payload: sentAt exceeds 2^53 - 1',
    );
    expectProtocolError(
      () => encodeApplicationPayload({ kind: PayloadKind.SessionReset, sequence: -1, sentAt: 0 }),
      ProtocolErrorCode.Malformed,
      'application payload: sequence must be an integer from 0 to 4294967295',
    );
  });

  it('decodes a kind it does not know (a newer peer’s) to its header and unread body, and re-encodes it as sent', () => {
    const bytes = Uint8Array.of(1, 77, 0, 0, 0, 5, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, 9, 8, 7);
    const decoded = decodeApplicationPayload(bytes);
    expect(decoded).toEqual({ kind: 'unknown', rawKind: 77, ...header, body: Uint8Array.of(9, 8, 7) });
    expect(encodeApplicationPayload(decoded)).toEqual(bytes);
    const empty = decodeApplicationPayload(bytes.subarray(0, APPLICATION_HEADER_BYTES));
    expect(empty).toEqual({ kind: 'unknown', rawKind: 77, ...header, body: new Uint8Array(0) });
    const sealed = sealApplicationPayload({
      kind: 'unknown',
      rawKind: 200,
      ...header,
      body: Uint8Array.of(1),
    });
    expect(openApplicationPayload(sealed)).toEqual({
      kind: 'unknown',
      rawKind: 200,
      ...header,
      body: Uint8Array.of(1),
    });
  });

  it('refuses a header that does not decode whatever the kind, and an unknown payload that is not one', () => {
    const future = Uint8Array.of(1, 77, 0, 0, 0, 5, 0x00, 0x20, 0, 0, 0, 0, 0, 0);
    expectProtocolError(
      () => decodeApplicationPayload(future),
      ProtocolErrorCode.Malformed,
      'application payload: sentAt exceeds 2^53 - 1',
    );
    expectProtocolError(
      () => decodeApplicationPayload(future.subarray(0, 10)),
      ProtocolErrorCode.Malformed,
      'application payload: truncated at sentAt (needs 8 bytes at offset 6, 4 left)',
    );
    const body = new Uint8Array(0);
    expectProtocolError(
      () => encodeApplicationPayload({ kind: 'unknown', rawKind: PayloadKind.Text, ...header, body }),
      ProtocolErrorCode.Malformed,
      'application payload: kind 1 is known: encode it as that kind',
    );
    expectProtocolError(
      () => encodeApplicationPayload({ kind: 'unknown', rawKind: 256, ...header, body }),
      ProtocolErrorCode.Malformed,
      'application payload: rawKind must be a byte',
    );
    expectProtocolError(
      () =>
        encodeApplicationPayload({
          kind: 'unknown',
          rawKind: 77,
          ...header,
          body: new Uint8Array(MAX_APPLICATION_PAYLOAD_BYTES - APPLICATION_HEADER_BYTES + 1),
        }),
      ProtocolErrorCode.TooLarge,
      `application payload: ${MAX_APPLICATION_PAYLOAD_BYTES + 1} bytes, the limit is ${MAX_APPLICATION_PAYLOAD_BYTES}`,
    );
  });

  const allowed = [
    ProtocolErrorCode.Malformed,
    ProtocolErrorCode.TooLarge,
    ProtocolErrorCode.UnsupportedVersion,
  ];

  it('fuzz: arbitrary bytes', () => {
    fuzz(arbitraryBytes(120), (b) =>
      checkDecoder(decodeApplicationPayload, encodeApplicationPayload, allowed, b),
    );
  });

  it('fuzz: arbitrary bodies behind a valid version and kind', () => {
    const stats = newStats();
    const input = fc
      .tuple(fc.integer({ min: 1, max: 4 }), fc.uint8Array({ minLength: 12, maxLength: 120 }))
      .map(([kind, rest]) => Uint8Array.of(1, kind, ...rest));
    fuzz(input, (b) => checkDecoder(decodeApplicationPayload, encodeApplicationPayload, allowed, b, stats));
    expect(stats.codes.get(ProtocolErrorCode.TooLarge)).toBeGreaterThan(0);
  });

  it('fuzz: mutated valid payloads', () => {
    const stats = newStats();
    fuzz(mutated(applicationPayload.map(encodeApplicationPayload)), (b) =>
      checkDecoder(decodeApplicationPayload, encodeApplicationPayload, allowed, b, stats),
    );
    expect(stats.decoded).toBeGreaterThan(0);
  });

  it('fuzz: mutated sealed (padded) payloads through openApplicationPayload', () => {
    const stats = newStats();
    fuzz(mutated(applicationPayload.map(sealApplicationPayload)), (b) =>
      checkDecoder(openApplicationPayload, sealApplicationPayload, allowed, b, stats),
    );
    expect(stats.decoded).toBeGreaterThan(0);
  });
});
