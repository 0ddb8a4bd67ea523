/**
 * Addresses: where mail goes. An address is an identity (the account's Ed25519 public key,
 * 32 bytes) plus a device id (u32). Every device of an identity gets its own mailbox and its own
 * sessions, as in Signal's ProtocolAddress (name, device id), so multi-device needs no format
 * change: today every identity has one device, DEFAULT_DEVICE_ID.
 *
 * Two forms, one value each:
 * - binary (envelopes): `identity key (32) | device id (u32 BE)`, ADDRESS_BYTES long;
 * - string (socket.io payloads, database keys, logs): `base64url(identity key) + '.' + device id`
 *   in decimal, e.g. `11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo.1`.
 *
 * Parsing is strict: canonical base64url only, a decimal device id without sign, leading zeros
 * or spaces, in MIN_DEVICE_ID..MAX_DEVICE_ID. So two equal addresses have equal strings, and a
 * string can be compared or used as a key without normalising it. The key is not checked to be a
 * valid curve point (that needs libsodium): an address names a mailbox, and only the holder of
 * the identity's secret key can authenticate to read it.
 */
import type { IdentityPublicKey } from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import { fromBase64url, toBase64url } from '../encoding/base64url.js';
import {
  ADDRESS_BYTES,
  ADDRESS_IDENTITY_BYTES,
  DEFAULT_DEVICE_ID,
  MAX_ADDRESS_STRING_CHARS,
  MAX_DEVICE_ID,
  MIN_DEVICE_ID,
} from '../limits.js';

/** One device of one identity. Plain data: compare with `addressEquals` or by string form. */
export interface Address {
  /** The identity's raw Ed25519 public key (32 bytes). */
  readonly identityKey: Uint8Array;
  /** The device, MIN_DEVICE_ID..MAX_DEVICE_ID. */
  readonly deviceId: number;
}

/** The string form, branded so a random string is not passed where an address is expected. */
export type AddressString = string & { readonly __brand: 'AddressString' };

const DEVICE_ID_PATTERN = /^[1-9][0-9]{0,9}$/;

/**
 * The address of `identity`'s device `deviceId`.
 *
 * @example
 * const to = addressOf(bob.publicKey); // device 1
 * socket.emit('prekeys:claim', { address: formatAddress(to) }, onReply);
 */
export function addressOf(identity: IdentityPublicKey, deviceId: number = DEFAULT_DEVICE_ID): Address {
  return checkAddress({ identityKey: identity.bytes.slice(), deviceId }, 'address');
}

/** Throws MALFORMED unless `address` is a well-formed Address; returns it. */
export function checkAddress(address: Address, what: string): Address {
  if (typeof address !== 'object' || address === null) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: expected an address object`);
  }
  assertUint8Array(address.identityKey, `${what}.identityKey`);
  if (address.identityKey.length !== ADDRESS_IDENTITY_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}.identityKey: expected ${ADDRESS_IDENTITY_BYTES} bytes, got ${address.identityKey.length}`,
    );
  }
  checkDeviceId(address.deviceId, `${what}.deviceId`);
  return address;
}

function checkDeviceId(deviceId: unknown, what: string): asserts deviceId is number {
  if (
    typeof deviceId !== 'number' ||
    !Number.isInteger(deviceId) ||
    deviceId < MIN_DEVICE_ID ||
    deviceId > MAX_DEVICE_ID
  ) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected an integer from ${MIN_DEVICE_ID} to ${MAX_DEVICE_ID}`,
    );
  }
}

/** True when both name the same device of the same identity (public data: no constant time needed). */
export function addressEquals(a: Address, b: Address): boolean {
  if (a.deviceId !== b.deviceId || a.identityKey.length !== b.identityKey.length) return false;
  for (let i = 0; i < a.identityKey.length; i++) if (a.identityKey[i] !== b.identityKey[i]) return false;
  return true;
}

/** `base64url(identity key) + '.' + device id`. */
export function formatAddress(address: Address): AddressString {
  checkAddress(address, 'address');
  return `${toBase64url(address.identityKey)}.${address.deviceId}` as AddressString;
}

/** Parses the string form strictly; throws MALFORMED (or TOO_LARGE for an overlong string). */
export function parseAddress(text: string): Address {
  if (typeof text !== 'string') {
    throw new ProtocolError(ProtocolErrorCode.Malformed, 'address: expected a string');
  }
  if (text.length > MAX_ADDRESS_STRING_CHARS) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `address: ${text.length} characters, the limit is ${MAX_ADDRESS_STRING_CHARS}`,
    );
  }
  const dot = text.indexOf('.');
  if (dot < 0) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, "address: expected '<identity>.<device id>'");
  }
  const identityKey = fromBase64url(text.slice(0, dot), ADDRESS_IDENTITY_BYTES, 'address identity');
  const device = text.slice(dot + 1);
  if (!DEVICE_ID_PATTERN.test(device)) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      'address device id: expected decimal digits without sign or leading zero',
    );
  }
  const deviceId = Number(device);
  checkDeviceId(deviceId, 'address device id');
  return { identityKey, deviceId };
}

/** Checks that `text` is a canonical address string and brands it. */
export function asAddressString(text: string): AddressString {
  parseAddress(text);
  return text as AddressString;
}

/** The binary form: `identity key (32) | device id (u32 BE)`. */
export function encodeAddress(address: Address): Uint8Array {
  checkAddress(address, 'address');
  return new BinaryWriter(ADDRESS_BYTES).bytes(address.identityKey).u32(address.deviceId).finish();
}

/** Parses exactly ADDRESS_BYTES bytes. */
export function decodeAddress(bytes: Uint8Array): Address {
  assertUint8Array(bytes, 'address');
  assertMaxLength(bytes.length, ADDRESS_BYTES, 'address');
  const reader = new BinaryReader(bytes, 'address');
  const address = readAddress(reader, 'address');
  reader.end();
  return address;
}

/** Reads a binary address from inside a larger message. */
export function readAddress(reader: BinaryReader, field: string): Address {
  const identityKey = reader.fixed(ADDRESS_IDENTITY_BYTES, `${field} identity key`);
  const deviceId = reader.u32(`${field} device id`);
  if (deviceId < MIN_DEVICE_ID) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${field}: device id 0 is reserved`);
  }
  return { identityKey, deviceId };
}
