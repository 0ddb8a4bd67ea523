import fc from 'fast-check';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { addressEquals } from '../address/address.js';
import { envelope as arbEnvelope } from '../../test/arbitraries.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { arbitraryBytes, checkDecoder, fuzz, largestSlice, mutated, newStats } from '../../test/fuzz.js';
import { MAX_ENVELOPE_CIPHERTEXT_BYTES } from '../limits.js';
import {
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_VERSION,
  MAX_ENVELOPE_BYTES,
  decodeEnvelope,
  encodeEnvelope,
  peekEnvelopeRoute,
  type Envelope,
} from './envelope.codec.js';

const id = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const identityKey = Uint8Array.from({ length: 32 }, (_, i) => i);
const ciphertext = Uint8Array.from({ length: 16 }, () => 0xcc);
const sample: Envelope = { id, recipient: { identityKey, deviceId: 7 }, ciphertext };

/** A header with a given ciphertext length claim and `body` bytes after it. */
function withClaim(claim: number, body = 0): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + body);
  out.set(encodeEnvelope(sample).subarray(0, ENVELOPE_HEADER_BYTES - 4));
  new DataView(out.buffer).setUint32(ENVELOPE_HEADER_BYTES - 4, claim, false);
  return out;
}

describe('envelope', () => {
  it('has the documented layout', () => {
    const bytes = encodeEnvelope(sample);
    expect(ENVELOPE_HEADER_BYTES).toBe(57);
    expect(bytes.length).toBe(57 + 16);
    expect(bytes[0]).toBe(ENVELOPE_VERSION);
    expect(bytes.subarray(1, 17)).toEqual(id);
    expect(bytes.subarray(17, 49)).toEqual(identityKey);
    expect(Array.from(bytes.subarray(49, 53))).toEqual([0, 0, 0, 7]);
    expect(Array.from(bytes.subarray(53, 57))).toEqual([0, 0, 0, 16]);
    expect(bytes.subarray(57)).toEqual(ciphertext);
  });

  it('round-trips any envelope, and the route peek agrees', () => {
    fc.assert(
      fc.property(arbEnvelope, (e) => {
        const bytes = encodeEnvelope(e);
        const back = decodeEnvelope(bytes);
        expect(back.id).toEqual(e.id);
        expect(addressEquals(back.recipient, e.recipient)).toBe(true);
        expect(back.ciphertext).toEqual(e.ciphertext);
        expect(encodeEnvelope(back)).toEqual(bytes);
        const route = peekEnvelopeRoute(bytes);
        expect(route.id).toEqual(e.id);
        expect(addressEquals(route.recipient, e.recipient)).toBe(true);
      }),
    );
  });

  it('decodes from a view into a larger buffer (pooled socket buffers) and returns copies', () => {
    const bytes = encodeEnvelope(sample);
    const pool = new Uint8Array(bytes.length + 10);
    pool.set(bytes, 5);
    const view = pool.subarray(5, 5 + bytes.length);
    const back = decodeEnvelope(view);
    expect(encodeEnvelope(back)).toEqual(bytes);
    pool.fill(0);
    expect(back.ciphertext).toEqual(ciphertext);
  });

  it('accepts the maximal ciphertext and refuses one byte more', () => {
    const max = encodeEnvelope({ ...sample, ciphertext: new Uint8Array(MAX_ENVELOPE_CIPHERTEXT_BYTES) });
    expect(max.length).toBe(MAX_ENVELOPE_BYTES);
    expect(decodeEnvelope(max).ciphertext.length).toBe(MAX_ENVELOPE_CIPHERTEXT_BYTES);
    expectProtocolError(
      () => encodeEnvelope({ ...sample, ciphertext: new Uint8Array(MAX_ENVELOPE_CIPHERTEXT_BYTES + 1) }),
      ProtocolErrorCode.TooLarge,
      'envelope: ciphertext of 65537 bytes, the limit is 65536',
    );
    expectProtocolError(
      () => decodeEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
      'envelope: 65594 bytes, the limit is 65593',
    );
  });

  it('refuses a header claiming 2^31 bytes with TOO_LARGE, allocating nothing for it', () => {
    const before = process.memoryUsage().arrayBuffers;
    let largest = 0;
    for (const claim of [2 ** 31, 2 ** 32 - 1, MAX_ENVELOPE_CIPHERTEXT_BYTES + 1]) {
      largest = Math.max(
        largest,
        largestSlice(() =>
          expectProtocolError(
            () => decodeEnvelope(withClaim(claim)),
            ProtocolErrorCode.TooLarge,
            `envelope: ciphertext of ${claim} bytes, the limit is ${MAX_ENVELOPE_CIPHERTEXT_BYTES}`,
          ),
        ),
      );
      expectProtocolError(
        () => peekEnvelopeRoute(withClaim(claim)),
        ProtocolErrorCode.TooLarge,
        `envelope: ciphertext of ${claim} bytes, the limit is ${MAX_ENVELOPE_CIPHERTEXT_BYTES}`,
      );
    }
    // Only the id (16) and the key (32) were copied; no buffer of the claimed size ever existed.
    expect(largest).toBe(32);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a claim that disagrees with the bytes present', () => {
    expectProtocolError(
      () => decodeEnvelope(withClaim(100, 99)),
      ProtocolErrorCode.Malformed,
      'envelope: truncated at ciphertext (needs 100 bytes at offset 57, 99 left)',
    );
    expectProtocolError(
      () => decodeEnvelope(withClaim(100, 101)),
      ProtocolErrorCode.Malformed,
      'envelope: 1 unexpected bytes after the end',
    );
    expectProtocolError(
      () => peekEnvelopeRoute(withClaim(100, 101)),
      ProtocolErrorCode.Malformed,
      'envelope: ciphertext length says 100 bytes, 101 present',
    );
    expectProtocolError(
      () => decodeEnvelope(withClaim(15, 15)),
      ProtocolErrorCode.Malformed,
      'envelope: ciphertext of 15 bytes, the minimum is 16',
    );
  });

  it('refuses other versions, device 0, and non-bytes', () => {
    const v2 = encodeEnvelope(sample);
    v2[0] = 2;
    expectProtocolError(
      () => decodeEnvelope(v2),
      ProtocolErrorCode.UnsupportedVersion,
      'envelope: version 2 is not supported (expected 1)',
    );
    const dev0 = encodeEnvelope(sample);
    dev0.fill(0, 49, 53);
    expectProtocolError(
      () => decodeEnvelope(dev0),
      ProtocolErrorCode.Malformed,
      'recipient: device id 0 is reserved',
    );
    expectProtocolError(
      () => decodeEnvelope(new Uint8Array(0)),
      ProtocolErrorCode.Malformed,
      'envelope: truncated at version (needs 1 bytes at offset 0, 0 left)',
    );
    expectProtocolError(
      () => decodeEnvelope('AQ' as unknown as Uint8Array),
      ProtocolErrorCode.Malformed,
      'envelope: expected a Uint8Array',
    );
    expectProtocolError(
      () => encodeEnvelope({ ...sample, id: new Uint8Array(15) }),
      ProtocolErrorCode.Malformed,
      'envelope id: expected 16 bytes, got 15',
    );
  });

  const allowed = [
    ProtocolErrorCode.Malformed,
    ProtocolErrorCode.TooLarge,
    ProtocolErrorCode.UnsupportedVersion,
  ];

  /** peekEnvelopeRoute must accept exactly what decodeEnvelope accepts. */
  function peekAgrees(bytes: Uint8Array): void {
    let decoded = true;
    try {
      decodeEnvelope(bytes);
    } catch {
      decoded = false;
    }
    try {
      peekEnvelopeRoute(bytes);
      if (!decoded) throw new Error('peek accepted what decode refused');
    } catch (err) {
      if (!ProtocolError.is(err)) throw err;
      if (decoded) throw new Error('peek refused what decode accepted', { cause: err });
    }
  }

  it('fuzz: arbitrary bytes', () => {
    const stats = newStats();
    fuzz(arbitraryBytes(160), (b) => {
      checkDecoder(decodeEnvelope, encodeEnvelope, allowed, b, stats);
      peekAgrees(b);
    });
    expect(stats.codes.get(ProtocolErrorCode.UnsupportedVersion)).toBeGreaterThan(0);
  });

  it('fuzz: arbitrary headers and bodies behind a valid version byte', () => {
    const stats = newStats();
    fuzz(fc.uint8Array({ minLength: ENVELOPE_HEADER_BYTES - 1, maxLength: 160 }), (b) => {
      const input = Uint8Array.of(ENVELOPE_VERSION, ...b);
      checkDecoder(decodeEnvelope, encodeEnvelope, allowed, input, stats);
      peekAgrees(input);
    });
    expect(stats.codes.get(ProtocolErrorCode.TooLarge)).toBeGreaterThan(0);
  });

  it('fuzz: mutated valid envelopes (flips, truncation, extension, splicing)', () => {
    const stats = newStats();
    fuzz(mutated(arbEnvelope.map(encodeEnvelope)), (b) => {
      checkDecoder(decodeEnvelope, encodeEnvelope, allowed, b, stats);
      peekAgrees(b);
    });
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
