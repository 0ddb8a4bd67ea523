import fc from 'fast-check';
import { ready } from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { messageId } from '../../test/arbitraries.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { checkDecoder, fuzz, mutated, newStats } from '../../test/fuzz.js';
import { formatMessageId, generateMessageId, parseMessageId } from './message-id.js';

beforeAll(() => ready());

const text = new TextEncoder();
const utf8 = new TextDecoder();

describe('message id', () => {
  it('is 16 random bytes, different every time', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = generateMessageId();
      expect(id.length).toBe(16);
      ids.add(formatMessageId(id));
    }
    expect(ids.size).toBe(1000);
  });

  it('has a 22-character canonical string form', () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + (i % 16));
    expect(formatMessageId(id)).toBe('8PHy8_T19vf4-fr7_P3-_w');
    fc.assert(
      fc.property(messageId, (bytes) => {
        const s = formatMessageId(bytes);
        expect(s).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(parseMessageId(s)).toEqual(bytes);
      }),
    );
  });

  it('refuses anything else, naming the field', () => {
    expectProtocolError(
      () => parseMessageId('abc', 'ack.ids[0]'),
      ProtocolErrorCode.Malformed,
      'ack.ids[0]: expected 22 characters, got 3',
    );
    expectProtocolError(
      () => parseMessageId('8PHy8_T19vf4-fr7_P3-_x'),
      ProtocolErrorCode.Malformed,
      'message id: not a canonical base64url encoding',
    );
    expectProtocolError(
      () => formatMessageId(new Uint8Array(17)),
      ProtocolErrorCode.Malformed,
      'message id: expected 16 bytes, got 17',
    );
  });

  const allowed = [ProtocolErrorCode.Malformed];
  const decode = (b: Uint8Array) => parseMessageId(utf8.decode(b));
  const encode = (id: Uint8Array) => text.encode(formatMessageId(id));

  it('fuzz: arbitrary strings', () => {
    fuzz(fc.string({ minLength: 20, maxLength: 24 }), (s) =>
      checkDecoder(decode, encode, allowed, text.encode(s)),
    );
  });

  it('fuzz: mutated valid ids', () => {
    const stats = newStats();
    fuzz(mutated(messageId.map(encode)), (b) =>
      checkDecoder(decode, encode, allowed, text.encode(utf8.decode(b)), stats),
    );
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
