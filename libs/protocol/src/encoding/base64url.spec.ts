import fc from 'fast-check';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { catchError } from '../../test/expect-error.js';
import { checkDecoder, fuzz, newStats } from '../../test/fuzz.js';
import { base64urlLength, fromBase64url, toBase64url } from './base64url.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('base64url', () => {
  it('matches RFC 4648 §10 test vectors (unpadded)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg'],
      ['fo', 'Zm8'],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg'],
      ['fooba', 'Zm9vYmE'],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(toBase64url(utf8(plain))).toBe(encoded);
      expect(fromBase64url(encoded, plain.length, 'v')).toEqual(utf8(plain));
    }
  });

  it('uses the URL-safe alphabet', () => {
    expect(toBase64url(Uint8Array.of(0xfb, 0xff))).toBe('-_8');
    expect(toBase64url(Uint8Array.of(0xfb, 0xff))).toBe(Buffer.from([0xfb, 0xff]).toString('base64url'));
  });

  it('round-trips and agrees with Node for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const text = toBase64url(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64url'));
        expect(text.length).toBe(base64urlLength(bytes.length));
        expect(fromBase64url(text, bytes.length, 'v')).toEqual(bytes);
      }),
    );
  });

  it.each([
    ['Zm9=', 2, 'field: expected 3 base64url characters, got 4'],
    ['Zm9v=', 3, 'field: expected 4 base64url characters, got 5'],
    ['Zm+v', 3, 'field: character 2 is not in the base64url alphabet'],
    ['Zm/v', 3, 'field: character 2 is not in the base64url alphabet'],
    ['Zh', 1, 'field: not a canonical base64url encoding'],
    ['Zm9', 2, 'field: not a canonical base64url encoding'],
    ['Zm\u00e9v', 3, 'field: character 2 is not in the base64url alphabet'],
  ])('refuses %j as %i bytes', (text, length, message) => {
    const err = catchError(() => fromBase64url(text, length, 'field'));
    expect(ProtocolError.is(err, ProtocolErrorCode.Malformed)).toBe(true);
    expect((err as Error).message).toBe(message);
  });

  it('fuzz: arbitrary strings decode canonically or throw MALFORMED', () => {
    const stats = newStats();
    fuzz(fc.tuple(fc.string({ maxLength: 30 }), fc.integer({ min: 0, max: 20 })), ([text, length]) =>
      checkDecoder(
        (bytes) => fromBase64url(new TextDecoder().decode(bytes), length, 'v'),
        (value) => utf8(toBase64url(value)),
        [ProtocolErrorCode.Malformed],
        utf8(text),
        stats,
      ),
    );
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
