/**
 * The session folder's wire codecs: prekey records, bundles, prekey headers and session
 * messages. Round trips, exact refusals, the relay transport shapes, and fast-check fuzzing
 * (FUZZ_RUNS = 10,000 cases per decoder, arbitrary and mutated bytes): a decoder returns a value
 * that re-encodes to the same bytes, or throws a ProtocolError, never anything else.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  IdentityPublicKey,
  KemPublicKey,
  RATCHET_MESSAGE_OVERHEAD,
  X25519PublicKey,
  XWING_CIPHERTEXT_BYTES,
  ready,
} from '@usm/crypto';
import { arbitraryBytes, checkDecoder, fuzz, mutated, newStats } from '../../test/fuzz.js';
import { formatAddress, addressOf } from '../address/address.js';
import { ProtocolErrorCode } from '../errors.js';
import {
  KEM_PREKEY_RECORD_BYTES,
  MAX_PREKEY_BUNDLE_BYTES,
  ONE_TIME_PREKEY_RECORD_BYTES,
  SIGNED_PREKEY_RECORD_BYTES,
  type KemPrekey,
  type OneTimePrekey,
  type SessionPrekeyBundle,
  type SignedPrekey,
  bundleFromClaim,
  decodeKemPrekey,
  decodeOneTimePrekey,
  decodePrekeyBundle,
  decodeSignedPrekey,
  encodeKemPrekey,
  encodeOneTimePrekey,
  encodePrekeyBundle,
  encodeSignedPrekey,
  prekeyRecordOf,
  publishRequestOf,
} from './prekeys.js';
import {
  MAX_SESSION_MESSAGE_BYTES,
  type PrekeyHeader,
  type SessionMessage,
  SessionMessageType,
  decodePrekeyHeader,
  decodeSessionMessage,
  encodePrekeyHeader,
  encodeSessionMessage,
} from './session-message.js';
import { claim, expectProtocolError, party } from './session-kit.test.js';

beforeAll(async () => {
  await ready();
});

// The decoders do not check curve points (session setup does), so random key bytes are valid input.
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const id = fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));
const x25519Key = bytes(32).map((b) => new X25519PublicKey(b));
const signature = bytes(64);

const signedPrekey: fc.Arbitrary<SignedPrekey> = fc.record({ id, publicKey: x25519Key, signature });
const kemPrekey: fc.Arbitrary<KemPrekey> = fc.record({
  id,
  publicKey: bytes(1216).map((b) => new KemPublicKey(b)),
  signature,
  lastResort: fc.boolean(),
});
const oneTimePrekey: fc.Arbitrary<OneTimePrekey> = fc.record({ id, publicKey: x25519Key });
const bundle: fc.Arbitrary<SessionPrekeyBundle> = fc
  .tuple(bytes(32), signedPrekey, kemPrekey, fc.option(oneTimePrekey, { nil: undefined }))
  .map(([ik, spk, kem, opk]) => ({
    identityKey: new IdentityPublicKey(ik),
    signedPrekey: spk,
    kemPrekey: kem,
    ...(opk ? { oneTimePrekey: opk } : {}),
  }));
const header: fc.Arbitrary<PrekeyHeader> = fc
  .tuple(
    bytes(32),
    x25519Key,
    id,
    fc.option(id, { nil: undefined }),
    id,
    fc.boolean(),
    bytes(XWING_CIPHERTEXT_BYTES),
  )
  .map(([ik, ek, spkId, opkId, kemId, lastResort, ct]) => ({
    identityKey: new IdentityPublicKey(ik),
    ephemeralKey: ek,
    signedPrekeyId: spkId,
    ...(opkId === undefined ? {} : { oneTimePrekeyId: opkId }),
    kemPrekeyId: kemId,
    kemPrekeyLastResort: lastResort,
    kemCiphertext: ct,
  }));
const ratchetMessage = fc.uint8Array({
  minLength: RATCHET_MESSAGE_OVERHEAD,
  maxLength: RATCHET_MESSAGE_OVERHEAD + 64,
});
const sessionMessage: fc.Arbitrary<SessionMessage> = fc.oneof(
  fc.record({ type: fc.constant(SessionMessageType.Prekey as const), header, ratchetMessage }),
  fc.record({ type: fc.constant(SessionMessageType.Ratchet as const), ratchetMessage }),
);

/** Every code a decoder of this folder may throw. */
const DECODE_CODES = [
  ProtocolErrorCode.Malformed,
  ProtocolErrorCode.TooLarge,
  ProtocolErrorCode.UnsupportedVersion,
  ProtocolErrorCode.InvalidKey,
];

interface Codec<T> {
  readonly name: string;
  readonly arb: fc.Arbitrary<T>;
  readonly encode: (v: T) => Uint8Array;
  readonly decode: (b: Uint8Array) => T;
  readonly size: number;
}

const codecs: Codec<unknown>[] = [
  {
    name: 'signed prekey',
    arb: signedPrekey,
    encode: encodeSignedPrekey,
    decode: decodeSignedPrekey,
    size: SIGNED_PREKEY_RECORD_BYTES,
  },
  {
    name: 'KEM prekey',
    arb: kemPrekey,
    encode: encodeKemPrekey,
    decode: decodeKemPrekey,
    size: KEM_PREKEY_RECORD_BYTES,
  },
  {
    name: 'one-time prekey',
    arb: oneTimePrekey,
    encode: encodeOneTimePrekey,
    decode: decodeOneTimePrekey,
    size: ONE_TIME_PREKEY_RECORD_BYTES,
  },
  {
    name: 'prekey bundle',
    arb: bundle,
    encode: encodePrekeyBundle,
    decode: decodePrekeyBundle,
    size: MAX_PREKEY_BUNDLE_BYTES,
  },
  { name: 'prekey header', arb: header, encode: encodePrekeyHeader, decode: decodePrekeyHeader, size: 0 },
  {
    name: 'session message',
    arb: sessionMessage,
    encode: encodeSessionMessage,
    decode: decodeSessionMessage,
    size: 0,
  },
] as Codec<unknown>[];

describe.each(codecs)('$name codec', ({ arb, encode, decode, size }) => {
  it('round-trips: decode(encode(v)) re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(arb, (v) => {
        const once = encode(v);
        if (size > 0) expect(once.length).toBeLessThanOrEqual(size);
        expect(encode(decode(once))).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  it('fuzz: mutated valid encodings decode canonically or throw a ProtocolError', () => {
    const stats = newStats();
    fuzz(mutated(arb.map(encode)), (input) => checkDecoder(decode, encode, DECODE_CODES, input, stats));
    // The mutations must reach both outcomes, or the run proved little.
    expect(stats.codes.size).toBeGreaterThan(0);
    expect(stats.decoded).toBeGreaterThan(0);
  });

  it('fuzz: arbitrary bytes decode canonically or throw a ProtocolError', () => {
    fuzz(arbitraryBytes(256), (input) => checkDecoder(decode, encode, DECODE_CODES, input));
  });
});

describe('codec refusals', () => {
  it('names what is wrong: version, kind, length, flags, key type', async () => {
    const p = party();
    const spk = encodeSignedPrekey(p.prekeys.signedPrekey);
    const v2 = spk.slice();
    v2[0] = 2;
    await expectProtocolError(
      () => decodeSignedPrekey(v2),
      ProtocolErrorCode.UnsupportedVersion,
      'signed prekey record: expected version 1, got 2',
    );
    await expectProtocolError(
      () => decodeOneTimePrekey(spk.subarray(0, ONE_TIME_PREKEY_RECORD_BYTES)),
      ProtocolErrorCode.Malformed,
      'one-time prekey record: unexpected record kind 1',
    );
    await expectProtocolError(
      () => decodeSignedPrekey(spk.subarray(1)),
      ProtocolErrorCode.Malformed,
      `signed prekey record: expected ${SIGNED_PREKEY_RECORD_BYTES} bytes, got ${SIGNED_PREKEY_RECORD_BYTES - 1}`,
    );
    await expectProtocolError(
      () => decodePrekeyBundle(new Uint8Array(MAX_PREKEY_BUNDLE_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
      `prekey bundle: ${MAX_PREKEY_BUNDLE_BYTES + 1} bytes, the limit is ${MAX_PREKEY_BUNDLE_BYTES}`,
    );
    const wrongKeyType = spk.slice();
    wrongKeyType[7] = 0x01; // the key encoding's type byte: Ed25519 where X25519 belongs
    await expectProtocolError(() => decodeSignedPrekey(wrongKeyType), ProtocolErrorCode.InvalidKey);
    await expectProtocolError(
      () => decodeSessionMessage(new Uint8Array(MAX_SESSION_MESSAGE_BYTES + 1)),
      ProtocolErrorCode.TooLarge,
    );
    await expectProtocolError(
      () => decodeSessionMessage(Uint8Array.of(1, 1, 0x04)),
      ProtocolErrorCode.Malformed,
      'session message: unknown flags 4',
    );
    await expectProtocolError(
      () => decodeSessionMessage(Uint8Array.of(1, 3)),
      ProtocolErrorCode.Malformed,
      'session message: unknown type 3',
    );
  });

  it('bundleFromClaim reads the relay claim shape and checks the listed ids', async () => {
    const bob = party();
    const b = claim(bob);
    const transport = {
      address: formatAddress(addressOf(bob.publicKey)),
      signedPrekey: prekeyRecordOf(b.signedPrekey),
      kemPrekey: prekeyRecordOf(b.kemPrekey),
      oneTimePrekey: prekeyRecordOf(b.oneTimePrekey!),
    };
    expect(encodePrekeyBundle(bundleFromClaim(transport))).toEqual(encodePrekeyBundle(b));
    expect(bundleFromClaim({ ...transport, oneTimePrekey: null }).oneTimePrekey).toBeUndefined();
    await expectProtocolError(
      () =>
        bundleFromClaim({
          ...transport,
          signedPrekey: { ...transport.signedPrekey, id: b.signedPrekey.id + 1 },
        }),
      ProtocolErrorCode.Malformed,
      `signed prekey: the relay lists id ${b.signedPrekey.id + 1} but the record holds id ${b.signedPrekey.id}`,
    );
    await expectProtocolError(
      () => bundleFromClaim({ ...transport, kemPrekey: transport.signedPrekey }),
      ProtocolErrorCode.Malformed,
    );
  });

  it('publishRequestOf carries the signed, last-resort and one-time prekeys as records', () => {
    const bob = party(3);
    const pub = bob.prekeys.publication();
    const req = publishRequestOf(pub);
    expect(req.signedPrekey).toEqual({
      id: pub.signedPrekey.id,
      record: encodeSignedPrekey(pub.signedPrekey),
    });
    expect(req.kemPrekey).toEqual({
      id: pub.lastResortKemPrekey.id,
      record: encodeKemPrekey(pub.lastResortKemPrekey),
    });
    expect(req.oneTimePrekeys?.map((r) => decodeOneTimePrekey(r.record).id)).toEqual(
      pub.oneTimePrekeys.map((p) => p.id),
    );
    expect(publishRequestOf({ oneTimePrekeys: [] })).toEqual({});
  });
});
