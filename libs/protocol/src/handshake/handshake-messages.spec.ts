/**
 * The three codecs: layouts, input checks of the encoders, and fuzzing of the decoders (10,000
 * arbitrary or mutated inputs each): an input either decodes to a value that re-encodes to the
 * same bytes, or is refused with a ProtocolError.
 */
import fc from 'fast-check';
import { X25519PublicKey, toHex } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import {
  COMPLETE_BYTES,
  INIT_BYTES,
  RESPONSE_BYTES,
  decodeHandshakeComplete,
  decodeHandshakeInit,
  decodeHandshakeResponse,
  decodeRelayMaterial,
  encodeHandshakeComplete,
  encodeHandshakeInit,
  encodeHandshakeResponse,
  encodeRelayMaterial,
} from './handshake-messages.js';
import { T0, errorOf, expectProtocolError, handshake, world } from './handshake-kit.test.js';

const Code = ProtocolErrorCode;
let valid: { init: Uint8Array; response: Uint8Array; complete: Uint8Array };

beforeAll(async () => {
  const w = await world();
  valid = await handshake(w.newClient(), w.newRelay());
});

describe('layouts', () => {
  it('Init: version, type, keys, time, nonce, signature at fixed offsets', () => {
    const init = decodeHandshakeInit(valid.init);
    expect(valid.init.length).toBe(INIT_BYTES);
    expect([valid.init[0], valid.init[1]]).toEqual([1, 1]);
    expect(toHex(valid.init.subarray(2, 36))).toBe(toHex(init.ephemeral.encode()));
    expect(toHex(valid.init.subarray(36, 70))).toBe(toHex(init.identity.encode()));
    expect(init.timestampMs).toBe(T0);
    expect(toHex(valid.init.subarray(70, 78))).toBe(T0.toString(16).padStart(16, '0'));
    expect(toHex(init.nonce)).toBe(toHex(valid.init.subarray(78, 110)));
    expect(toHex(init.signature)).toBe(toHex(valid.init.subarray(110)));
    expect(toHex(encodeHandshakeInit(init))).toBe(toHex(valid.init));
  });

  it('Response and Complete re-encode to the same bytes', () => {
    const response = decodeHandshakeResponse(valid.response);
    expect([valid.response[0], valid.response[1]]).toEqual([1, 2]);
    expect(response.timestampMs).toBe(T0);
    expect(toHex(encodeHandshakeResponse(response))).toBe(toHex(valid.response));
    const complete = decodeHandshakeComplete(valid.complete);
    expect([valid.complete[0], valid.complete[1]]).toEqual([1, 3]);
    expect(toHex(encodeHandshakeComplete(complete))).toBe(toHex(valid.complete));
  });

  it('decoded fields are copies: changing the input later does not change them', () => {
    const bytes = valid.init.slice();
    const init = decodeHandshakeInit(bytes);
    bytes.fill(0);
    expect(toHex(encodeHandshakeInit(init))).toBe(toHex(valid.init));
  });

  it('names the expected message when handed another one', async () => {
    const err = await expectProtocolError(() => decodeHandshakeInit(valid.complete), Code.UnexpectedMessage);
    expect(err.message).toBe('expected HandshakeInit, got HandshakeComplete');
  });

  it('refuses a time above 2^53 - 1 (it would not re-encode)', async () => {
    const bytes = valid.init.slice();
    bytes.set([0x00, 0x20, 0, 0, 0, 0, 0, 0], 70); // 2^53
    await expectProtocolError(() => decodeHandshakeInit(bytes), Code.Malformed);
    bytes.set([0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 70); // 2^53 - 1
    expect(decodeHandshakeInit(bytes).timestampMs).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('relay material: identity then signature, length-checked', async () => {
    const init = decodeHandshakeInit(valid.init);
    const material = { identity: init.identity, signature: init.signature };
    const bytes = encodeRelayMaterial(material);
    expect(bytes.length).toBe(98);
    expect(toHex(encodeRelayMaterial(decodeRelayMaterial(bytes)))).toBe(toHex(bytes));
    await expectProtocolError(() => decodeRelayMaterial(bytes.subarray(1)), Code.Malformed);
  });
});

describe('encoders check their inputs (MALFORMED)', () => {
  const init = () => decodeHandshakeInit(valid.init);

  it.each([-1, 1.5, Number.NaN, 2 ** 53, Infinity])('refuses the timestamp %p', async (timestampMs) => {
    await expectProtocolError(() => encodeHandshakeInit({ ...init(), timestampMs }), Code.Malformed);
  });

  it('refuses a nonce, signature or MAC of the wrong length', async () => {
    await expectProtocolError(
      () => encodeHandshakeInit({ ...init(), nonce: new Uint8Array(31) }),
      Code.Malformed,
    );
    await expectProtocolError(
      () => encodeHandshakeInit({ ...init(), signature: new Uint8Array(65) }),
      Code.Malformed,
    );
    const complete = decodeHandshakeComplete(valid.complete);
    await expectProtocolError(
      () => encodeHandshakeComplete({ ...complete, mac: new Uint8Array(16) }),
      Code.Malformed,
    );
    const response = decodeHandshakeResponse(valid.response);
    await expectProtocolError(
      () => encodeHandshakeResponse({ ...response, sealedMaterial: new Uint8Array(113) }),
      Code.Malformed,
    );
  });

  it('refuses a non-Uint8Array input to a decoder', async () => {
    await expectProtocolError(() => decodeHandshakeInit('abc' as unknown as Uint8Array), Code.Malformed);
  });
});

describe('decoder fuzzing (fast-check, 10,000 inputs per decoder)', () => {
  type Codec = { decode: (b: Uint8Array) => unknown; encode: (m: never) => Uint8Array; length: number };
  const codecs: Record<string, Codec> = {
    Init: { decode: decodeHandshakeInit, encode: encodeHandshakeInit, length: INIT_BYTES },
    Response: { decode: decodeHandshakeResponse, encode: encodeHandshakeResponse, length: RESPONSE_BYTES },
    Complete: { decode: decodeHandshakeComplete, encode: encodeHandshakeComplete, length: COMPLETE_BYTES },
  };

  /** Edits of a valid message: overwrite, insert or delete bytes, or cut its tail. */
  const mutated = () =>
    fc
      .tuple(
        fc.constantFrom(valid.init, valid.response, valid.complete),
        fc.array(
          fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.integer({ min: 0, max: 255 })),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
      )
      .map(([base, edits]) => {
        const bytes = [...base];
        for (const [op, at, value] of edits) {
          const i = at % (bytes.length + 1);
          if (op === 'set' && i < bytes.length) bytes[i] = value;
          else if (op === 'insert') bytes.splice(i, 0, value);
          else bytes.splice(i, 1);
        }
        return Uint8Array.from(bytes);
      });

  /** Random bytes in a message's exact layout with valid headers: most of them decode. */
  const wellFormed = (type: number, length: number, keyOffsets: number[], timeOffsets: number[]) =>
    fc
      .tuple(fc.uint8Array({ minLength: length, maxLength: length }), fc.boolean())
      .map(([bytes, smallTime]) => {
        bytes[0] = 1;
        bytes[1] = type;
        for (const at of keyOffsets) bytes[at] = 1; // key encoding version; the type byte stays random
        if (smallTime) for (const at of timeOffsets) bytes.fill(0, at, at + 2);
        return bytes;
      });

  const inputs = () =>
    fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      mutated(),
      wellFormed(1, INIT_BYTES, [2, 36], [70]),
      wellFormed(1, INIT_BYTES, [2, 36], [70]).map((b) => ((b[3] = 2), (b[37] = 1), b)),
      wellFormed(2, RESPONSE_BYTES, [2], [36]).map((b) => ((b[3] = 2), b)),
      wellFormed(3, COMPLETE_BYTES, [], []),
    );

  it.each(Object.keys(codecs))(
    '%s: decodes to a value that re-encodes identically, or throws ProtocolError',
    (name) => {
      const codec = codecs[name] as Codec;
      let decoded = 0;
      fc.assert(
        fc.property(inputs(), (bytes) => {
          let message: unknown;
          try {
            message = codec.decode(bytes);
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            return;
          }
          decoded++;
          expect(toHex(codec.encode(message as never))).toBe(toHex(bytes));
        }),
        { numRuns: 10_000 },
      );
      // The generators reach the success path too, not only refusals.
      expect(decoded).toBeGreaterThan(100);
    },
  );

  it('a CryptoError from a key decoder never escapes (wrong key type inside a message)', async () => {
    const bytes = valid.response.slice();
    bytes[3] = 1; // an Ed25519 type byte where the X25519 ephemeral belongs
    const err = await errorOf(() => decodeHandshakeResponse(bytes));
    expect(ProtocolError.is(err, Code.InvalidKey)).toBe(true);
  });

  it('any 32 bytes are an X25519 public key on the wire; low order is caught at the DH', () => {
    const bytes = valid.response.slice();
    bytes.fill(0, 4, 36);
    expect(decodeHandshakeResponse(bytes).ephemeral.equals(new X25519PublicKey(new Uint8Array(32)))).toBe(
      true,
    );
  });
});
