/**
 * Binary codecs of the three handshake messages (see docs/protocol.md, "Client <-> relay
 * handshake"). Every message is fixed-size:
 *
 *   Init      (174) version | 0x01 | client ephemeral (34) | client identity (34) | time u64 | nonce (32) | signature (64)
 *   Response  (190) version | 0x02 | relay ephemeral (34) | time u64 | sealed relay material (114) | relay MAC (32)
 *   Complete   (98) version | 0x03 | client signature (64) | client MAC (32)
 *
 * Keys use the crypto core's `version | type | key` encoding (34 bytes), integers are
 * big-endian, times are milliseconds since the Unix epoch and must be safe integers.
 *
 * Decoders check, in this order: length >= 2 (MALFORMED), version (UNSUPPORTED_VERSION), type
 * (another handshake message: UNEXPECTED_MESSAGE; anything else: MALFORMED), exact length
 * (MALFORMED), then each field (key encodings: MALFORMED or INVALID_KEY; a time above 2^53 - 1:
 * MALFORMED). Whatever decodes re-encodes to the same bytes, and every failure is a
 * ProtocolError whose message names the field and the lengths, never a byte of content.
 */
import {
  CryptoError,
  ED25519_SIGNATURE_BYTES,
  GCM_TAG_BYTES,
  IdentityPublicKey,
  X25519PublicKey,
  concatBytes,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { cryptoToProtocolError } from './handshake-errors.js';
import {
  HANDSHAKE_MAC_BYTES,
  HANDSHAKE_NONCE_BYTES,
  HANDSHAKE_VERSION,
  HandshakeMessageType,
} from './limits.js';

/** An encoded public key: version | type | 32 bytes. */
export const ENCODED_KEY_BYTES = 34;
const HEADER_BYTES = 2;
const TIME_BYTES = 8;

/** Init without its signature: what the client signs in message 1. */
export const INIT_BODY_BYTES = HEADER_BYTES + 2 * ENCODED_KEY_BYTES + TIME_BYTES + HANDSHAKE_NONCE_BYTES; // 110
export const INIT_BYTES = INIT_BODY_BYTES + ED25519_SIGNATURE_BYTES; // 174

/** The relay material in clear: relay identity key | relay signature. */
export const RELAY_MATERIAL_BYTES = ENCODED_KEY_BYTES + ED25519_SIGNATURE_BYTES; // 98
/** Sealed relay material: AES-256-GCM ciphertext | tag. */
export const SEALED_RELAY_MATERIAL_BYTES = RELAY_MATERIAL_BYTES + GCM_TAG_BYTES; // 114
/** The Response's clear header: version | type | relay ephemeral | relay time. */
export const RESPONSE_HEADER_BYTES = HEADER_BYTES + ENCODED_KEY_BYTES + TIME_BYTES; // 44
export const RESPONSE_BYTES = RESPONSE_HEADER_BYTES + SEALED_RELAY_MATERIAL_BYTES + HANDSHAKE_MAC_BYTES; // 190

export const COMPLETE_BYTES = HEADER_BYTES + ED25519_SIGNATURE_BYTES + HANDSHAKE_MAC_BYTES; // 98

/** Message 1, client -> relay. */
export interface HandshakeInit {
  readonly ephemeral: X25519PublicKey;
  readonly identity: IdentityPublicKey;
  /** The client's clock, ms since the Unix epoch. */
  readonly timestampMs: number;
  readonly nonce: Uint8Array;
  /** Ed25519 over CLIENT_INIT_SIGNATURE_CONTEXT | SHA-256(Init body). */
  readonly signature: Uint8Array;
}

/** Message 2, relay -> client. */
export interface HandshakeResponse {
  readonly ephemeral: X25519PublicKey;
  /** The relay's clock, ms since the Unix epoch. */
  readonly timestampMs: number;
  /** AES-256-GCM of relay identity | relay signature. */
  readonly sealedMaterial: Uint8Array;
  /** The relay's Finished MAC. */
  readonly mac: Uint8Array;
}

/** Message 3, client -> relay. */
export interface HandshakeComplete {
  readonly signature: Uint8Array;
  readonly mac: Uint8Array;
}

/** The relay material, once opened. */
export interface RelayMaterial {
  readonly identity: IdentityPublicKey;
  readonly signature: Uint8Array;
}

const MESSAGE_NAMES: Record<HandshakeMessageType, string> = {
  [HandshakeMessageType.Init]: 'HandshakeInit',
  [HandshakeMessageType.Response]: 'HandshakeResponse',
  [HandshakeMessageType.Complete]: 'HandshakeComplete',
};

const malformed = (message: string) => new ProtocolError(ProtocolErrorCode.Malformed, message);

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function checkLength(value: Uint8Array, length: number, field: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw malformed(`${field}: expected ${length} bytes, got ${got}`);
  }
  return value;
}

function u64(value: number, field: string): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw malformed(`${field}: expected an integer from 0 to 2^53 - 1`);
  }
  const out = new Uint8Array(TIME_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(value), false);
  return out;
}

function header(type: HandshakeMessageType): Uint8Array {
  return Uint8Array.of(HANDSHAKE_VERSION, type);
}

/** Init without the signature (the bytes the client signs). */
export function encodeInitBody(init: Omit<HandshakeInit, 'signature'>): Uint8Array {
  return concatBytes(
    header(HandshakeMessageType.Init),
    init.ephemeral.encode(),
    init.identity.encode(),
    u64(init.timestampMs, 'HandshakeInit timestamp'),
    checkLength(init.nonce, HANDSHAKE_NONCE_BYTES, 'HandshakeInit nonce'),
  );
}

export function encodeHandshakeInit(init: HandshakeInit): Uint8Array {
  return concatBytes(
    encodeInitBody(init),
    checkLength(init.signature, ED25519_SIGNATURE_BYTES, 'HandshakeInit signature'),
  );
}

/** The Response's clear header (what the relay's key schedule hashes before sealing). */
export function encodeResponseHeader(
  response: Pick<HandshakeResponse, 'ephemeral' | 'timestampMs'>,
): Uint8Array {
  return concatBytes(
    header(HandshakeMessageType.Response),
    response.ephemeral.encode(),
    u64(response.timestampMs, 'HandshakeResponse timestamp'),
  );
}

export function encodeHandshakeResponse(response: HandshakeResponse): Uint8Array {
  return concatBytes(
    encodeResponseHeader(response),
    checkLength(response.sealedMaterial, SEALED_RELAY_MATERIAL_BYTES, 'HandshakeResponse sealed material'),
    checkLength(response.mac, HANDSHAKE_MAC_BYTES, 'HandshakeResponse MAC'),
  );
}

/** Complete without the MAC (what the client's Finished MAC covers last). */
export function encodeCompleteBody(complete: Pick<HandshakeComplete, 'signature'>): Uint8Array {
  return concatBytes(
    header(HandshakeMessageType.Complete),
    checkLength(complete.signature, ED25519_SIGNATURE_BYTES, 'HandshakeComplete signature'),
  );
}

export function encodeHandshakeComplete(complete: HandshakeComplete): Uint8Array {
  return concatBytes(
    encodeCompleteBody(complete),
    checkLength(complete.mac, HANDSHAKE_MAC_BYTES, 'HandshakeComplete MAC'),
  );
}

export function encodeRelayMaterial(material: RelayMaterial): Uint8Array {
  return concatBytes(
    material.identity.encode(),
    checkLength(material.signature, ED25519_SIGNATURE_BYTES, 'relay material signature'),
  );
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** Checks version, type and exact length; returns a view over `bytes` for field reads. */
function readHeader(bytes: Uint8Array, type: HandshakeMessageType, length: number): DataView {
  const name = MESSAGE_NAMES[type];
  if (!(bytes instanceof Uint8Array)) throw malformed(`${name}: expected a Uint8Array`);
  if (bytes.length < HEADER_BYTES) {
    throw malformed(`${name}: expected ${length} bytes, got ${bytes.length}`);
  }
  if (bytes[0] !== HANDSHAKE_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `${name}: expected handshake version ${HANDSHAKE_VERSION}, got ${bytes[0]}`,
    );
  }
  const got = bytes[1] as HandshakeMessageType;
  if (got !== type) {
    const other = MESSAGE_NAMES[got];
    if (other !== undefined) {
      throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, `expected ${name}, got ${other}`);
    }
    throw malformed(`${name}: unknown handshake message type ${got}`);
  }
  if (bytes.length !== length) throw malformed(`${name}: expected ${length} bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readTime(view: DataView, offset: number, field: string): number {
  const value = view.getBigUint64(offset, false);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${field}: exceeds 2^53 - 1`);
  return Number(value);
}

function readKey<K>(decode: (encoded: Uint8Array) => K, bytes: Uint8Array, offset: number): K {
  try {
    return decode(bytes.slice(offset, offset + ENCODED_KEY_BYTES));
  } catch (err) {
    if (CryptoError.is(err)) throw cryptoToProtocolError(err);
    throw err;
  }
}

const field = (bytes: Uint8Array, offset: number, length: number) => bytes.slice(offset, offset + length);

/** Field offsets of Init (see the layout at the top of this file). */
const INIT_AT = { ephemeral: 2, identity: 36, time: 70, nonce: 78, signature: 110 } as const;
/** Field offsets of Response. */
const RESPONSE_AT = { ephemeral: 2, time: 36, sealed: 44, mac: 158 } as const;

export function decodeHandshakeInit(bytes: Uint8Array): HandshakeInit {
  const view = readHeader(bytes, HandshakeMessageType.Init, INIT_BYTES);
  return {
    ephemeral: readKey(X25519PublicKey.decode, bytes, INIT_AT.ephemeral),
    identity: readKey(IdentityPublicKey.decode, bytes, INIT_AT.identity),
    timestampMs: readTime(view, INIT_AT.time, 'HandshakeInit timestamp'),
    nonce: field(bytes, INIT_AT.nonce, HANDSHAKE_NONCE_BYTES),
    signature: field(bytes, INIT_AT.signature, ED25519_SIGNATURE_BYTES),
  };
}

export function decodeHandshakeResponse(bytes: Uint8Array): HandshakeResponse {
  const view = readHeader(bytes, HandshakeMessageType.Response, RESPONSE_BYTES);
  return {
    ephemeral: readKey(X25519PublicKey.decode, bytes, RESPONSE_AT.ephemeral),
    timestampMs: readTime(view, RESPONSE_AT.time, 'HandshakeResponse timestamp'),
    sealedMaterial: field(bytes, RESPONSE_AT.sealed, SEALED_RELAY_MATERIAL_BYTES),
    mac: field(bytes, RESPONSE_AT.mac, HANDSHAKE_MAC_BYTES),
  };
}

export function decodeHandshakeComplete(bytes: Uint8Array): HandshakeComplete {
  readHeader(bytes, HandshakeMessageType.Complete, COMPLETE_BYTES);
  const signature = field(bytes, HEADER_BYTES, ED25519_SIGNATURE_BYTES);
  const mac = field(bytes, HEADER_BYTES + ED25519_SIGNATURE_BYTES, HANDSHAKE_MAC_BYTES);
  return { signature, mac };
}

export function decodeRelayMaterial(bytes: Uint8Array): RelayMaterial {
  if (bytes.length !== RELAY_MATERIAL_BYTES) {
    throw malformed(`relay material: expected ${RELAY_MATERIAL_BYTES} bytes, got ${bytes.length}`);
  }
  const identity = readKey(IdentityPublicKey.decode, bytes, 0);
  return { identity, signature: field(bytes, ENCODED_KEY_BYTES, ED25519_SIGNATURE_BYTES) };
}
