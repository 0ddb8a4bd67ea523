import fc from 'fast-check';
import { IdentityPublicKey } from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { address as arbAddress } from '../../test/arbitraries.js';
import { arbitraryBytes, checkDecoder, fuzz, mutated, newStats } from '../../test/fuzz.js';
import { expectProtocolError as expectError } from '../../test/expect-error.js';
import { MAX_DEVICE_ID } from '../limits.js';
import {
  type Address,
  addressEquals,
  addressOf,
  asAddressString,
  decodeAddress,
  encodeAddress,
  formatAddress,
  parseAddress,
} from './address.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i);
const KEY_B64 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8';
const text = new TextEncoder();
const utf8 = new TextDecoder();

describe('address', () => {
  it('has a fixed binary and string form', () => {
    const a: Address = { identityKey: key, deviceId: 258 };
    expect(formatAddress(a)).toBe(`${KEY_B64}.258`);
    const bin = encodeAddress(a);
    expect(bin.length).toBe(36);
    expect(Array.from(bin.subarray(32))).toEqual([0, 0, 1, 2]);
    expect(addressEquals(decodeAddress(bin), a)).toBe(true);
    expect(addressEquals(parseAddress(`${KEY_B64}.258`), a)).toBe(true);
    expect(addressEquals(a, { identityKey: key, deviceId: 259 })).toBe(false);
  });

  it('addressOf copies the identity key and defaults to device 1', () => {
    const identity = new IdentityPublicKey(key.slice());
    const a = addressOf(identity);
    expect(a.deviceId).toBe(1);
    expect(a.identityKey).toEqual(key);
    expect(a.identityKey).not.toBe(identity.bytes);
  });

  it('round-trips both forms', () => {
    fc.assert(
      fc.property(arbAddress, (a) => {
        expect(addressEquals(parseAddress(formatAddress(a)), a)).toBe(true);
        expect(addressEquals(decodeAddress(encodeAddress(a)), a)).toBe(true);
        expect(formatAddress(parseAddress(formatAddress(a)))).toBe(formatAddress(a));
      }),
    );
  });

  it.each([
    [`${KEY_B64}.0`, 'address device id: expected decimal digits without sign or leading zero'],
    [`${KEY_B64}.01`, 'address device id: expected decimal digits without sign or leading zero'],
    [`${KEY_B64}.+1`, 'address device id: expected decimal digits without sign or leading zero'],
    [`${KEY_B64}. 1`, 'address device id: expected decimal digits without sign or leading zero'],
    [`${KEY_B64}.1.2`, 'address device id: expected decimal digits without sign or leading zero'],
    [`${KEY_B64}.4294967296`, `address device id: expected an integer from 1 to ${MAX_DEVICE_ID}`],
    [`${KEY_B64}`, "address: expected '<identity>.<device id>'"],
    [`${KEY_B64}=.1`, 'address identity: expected 43 base64url characters, got 44'],
    [`${KEY_B64.slice(0, 42)}9.1`, 'address identity: not a canonical base64url encoding'],
  ])('refuses %j', (input, message) => {
    expectError(() => parseAddress(input), ProtocolErrorCode.Malformed, message);
  });

  it('refuses an overlong string before parsing it', () => {
    expectError(
      () => parseAddress('A'.repeat(55)),
      ProtocolErrorCode.TooLarge,
      'address: 55 characters, the limit is 54',
    );
    expectError(
      () => asAddressString('x'.repeat(100_000)),
      ProtocolErrorCode.TooLarge,
      'address: 100000 characters, the limit is 54',
    );
  });

  it('refuses device id 0 and wrong lengths in binary', () => {
    expectError(
      () => decodeAddress(new Uint8Array(36)),
      ProtocolErrorCode.Malformed,
      'address: device id 0 is reserved',
    );
    expectError(
      () => decodeAddress(new Uint8Array(35)),
      ProtocolErrorCode.Malformed,
      'address: truncated at address device id (needs 4 bytes at offset 32, 3 left)',
    );
    expectError(
      () => decodeAddress(new Uint8Array(37)),
      ProtocolErrorCode.TooLarge,
      'address: 37 bytes, the limit is 36',
    );
    expectError(
      () => encodeAddress({ identityKey: new Uint8Array(31), deviceId: 1 }),
      ProtocolErrorCode.Malformed,
      'address.identityKey: expected 32 bytes, got 31',
    );
    expectError(
      () => encodeAddress({ identityKey: key, deviceId: 1.5 }),
      ProtocolErrorCode.Malformed,
      `address.deviceId: expected an integer from 1 to ${MAX_DEVICE_ID}`,
    );
  });

  const allowed = [ProtocolErrorCode.Malformed, ProtocolErrorCode.TooLarge];
  const validBinary = arbAddress.map(encodeAddress);
  const validString = arbAddress.map((a) => text.encode(formatAddress(a)));
  const parseBytes = (b: Uint8Array) => parseAddress(utf8.decode(b));
  const formatBytes = (a: Address) => text.encode(formatAddress(a));

  it('fuzz: binary decoder on arbitrary bytes', () => {
    const stats = newStats();
    fuzz(arbitraryBytes(48), (b) => checkDecoder(decodeAddress, encodeAddress, allowed, b, stats));
    expect(stats.codes.size).toBeGreaterThan(0);
  });

  it('fuzz: binary decoder on mutated valid addresses', () => {
    const stats = newStats();
    fuzz(mutated(validBinary), (b) => checkDecoder(decodeAddress, encodeAddress, allowed, b, stats));
    expect(stats.decoded).toBeGreaterThan(0);
  });

  it('fuzz: string parser on arbitrary strings', () => {
    fuzz(fc.string({ maxLength: 60 }), (s) => checkDecoder(parseBytes, formatBytes, allowed, text.encode(s)));
  });

  it('fuzz: string parser on mutated valid strings', () => {
    const stats = newStats();
    fuzz(mutated(validString), (b) => {
      // Mutations may leave invalid UTF-8, which TextDecoder would replace: only test what survives.
      const s = utf8.decode(b);
      checkDecoder(parseBytes, formatBytes, allowed, text.encode(s), stats);
    });
    expect(stats.decoded).toBeGreaterThan(0);
    expect(stats.codes.get(ProtocolErrorCode.Malformed)).toBeGreaterThan(0);
  });
});
