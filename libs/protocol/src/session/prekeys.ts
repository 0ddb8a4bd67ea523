/**
 * Prekeys and prekey bundles (PQXDH revision 3, §3.2 "Publishing keys"): the public records an
 * owner ("Bob") publishes to the relay's prekey directory and the bundle a claim returns, with
 * their binary codecs and the signatures over them.
 *
 * Bob publishes (PQXDH §3.2):
 *  - his identity key IK_B (Ed25519; the relay knows it as the address's identity);
 *  - a signed X25519 prekey SPK_B with Sig(IK_B, context || id || Encode(SPK_B));
 *  - a signed last-resort X-Wing prekey PQSPK_B with Sig(IK_B, context || kind || id || Encode(PQSPK_B));
 *  - optionally signed one-time X-Wing prekeys PQOPK_B (same signature, other kind byte);
 *  - up to MAX_ONE_TIME_PREKEYS_PER_PUBLISH one-time X25519 prekeys OPK_B per publish (unsigned,
 *    as in PQXDH: a forged one only costs the initiator a session that fails to set up).
 * A claim returns one bundle: IK_B, SPK_B, one KEM prekey (a one-time one while any is left, else
 * the last-resort one) and one OPK_B if any is left.
 *
 * Record layouts (big-endian; keys are @usm/crypto's `version | type | key` encodings, so the
 * ranges of EncodeEC and EncodeKEM are disjoint as PQXDH §2.1 requires):
 *   signed prekey     version (1) | kind 0x01 | id u32 | X25519 key (34) | signature (64)   = 104
 *   KEM prekey        version (1) | kind 0x02 last-resort / 0x03 one-time | id u32
 *                     | X-Wing key (1218) | signature (64)                                    = 1288
 *   one-time prekey   version (1) | kind 0x04 | id u32 | X25519 key (34)                      = 40
 *   bundle            version (1) | identity key (34) | signed prekey record (104)
 *                     | KEM prekey record (1288) | has one-time prekey (0 or 1)
 *                     | [one-time prekey record (40)]                                         = 1428 or 1468
 * Every decoder checks the total length before it reads anything (all sizes are fixed) and
 * refuses trailing bytes, an unknown version (UNSUPPORTED_VERSION), a wrong kind or key type.
 */
import {
  ED25519_SIGNATURE_BYTES,
  IdentityPublicKey,
  KemPublicKey,
  X25519PublicKey,
  assertSignature,
  concatBytes,
} from '@usm/crypto';
import { parseAddress } from '../address/address.js';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import type { PrekeyBundle, PrekeyRecord, PrekeysPublishRequest } from '../events.js';
import { MAX_PREKEY_ID } from '../limits.js';
import { KEM_PREKEY_SIGNATURE_CONTEXT, SIGNED_PREKEY_SIGNATURE_CONTEXT } from './kdf-labels.js';
import { translated } from './session-errors.js';

/** Version byte of every prekey record and bundle. */
export const PREKEY_RECORD_VERSION = 1;

/** Kind byte of a prekey record. */
export enum PrekeyKind {
  Signed = 0x01,
  KemLastResort = 0x02,
  KemOneTime = 0x03,
  OneTime = 0x04,
}

const X25519_KEY_ENCODING_BYTES = 34;
const IDENTITY_KEY_ENCODING_BYTES = 34;
const KEM_KEY_ENCODING_BYTES = 1218;

export const SIGNED_PREKEY_RECORD_BYTES = 2 + 4 + X25519_KEY_ENCODING_BYTES + ED25519_SIGNATURE_BYTES;
export const KEM_PREKEY_RECORD_BYTES = 2 + 4 + KEM_KEY_ENCODING_BYTES + ED25519_SIGNATURE_BYTES;
export const ONE_TIME_PREKEY_RECORD_BYTES = 2 + 4 + X25519_KEY_ENCODING_BYTES;
const BUNDLE_FIXED_BYTES =
  1 + IDENTITY_KEY_ENCODING_BYTES + SIGNED_PREKEY_RECORD_BYTES + KEM_PREKEY_RECORD_BYTES + 1;
/** The largest encoded bundle (with a one-time prekey). */
export const MAX_PREKEY_BUNDLE_BYTES = BUNDLE_FIXED_BYTES + ONE_TIME_PREKEY_RECORD_BYTES;

/** A signed X25519 prekey SPK_B as published. */
export interface SignedPrekey {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
  /** Ed25519 signature by the identity over `signedPrekeySignedData(id, publicKey)`. */
  readonly signature: Uint8Array;
}

/** A signed X-Wing prekey (PQSPK_B, last-resort, or PQOPK_B, one-time) as published. */
export interface KemPrekey {
  readonly id: number;
  readonly publicKey: KemPublicKey;
  /** Ed25519 signature over `kemPrekeySignedData(lastResort, id, publicKey)`. */
  readonly signature: Uint8Array;
  /** True for the last-resort prekey (reused until rotated), false for a one-time one. */
  readonly lastResort: boolean;
}

/** A one-time X25519 prekey OPK_B as published (unsigned, as in PQXDH). */
export interface OneTimePrekey {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
}

/** What one claim returns: everything an initiator needs to start a session with one device. */
export interface SessionPrekeyBundle {
  readonly identityKey: IdentityPublicKey;
  readonly signedPrekey: SignedPrekey;
  readonly kemPrekey: KemPrekey;
  /** Absent when the owner has run out: setup then omits DH4 (see docs/protocol.md). */
  readonly oneTimePrekey?: OneTimePrekey;
}

/** Everything an owner publishes (PrekeyStore.publication()). */
export interface PrekeyPublication {
  readonly identityKey: IdentityPublicKey;
  readonly signedPrekey: SignedPrekey;
  readonly lastResortKemPrekey: KemPrekey;
  readonly oneTimeKemPrekeys: readonly KemPrekey[];
  readonly oneTimePrekeys: readonly OneTimePrekey[];
}

function u32(n: number): Uint8Array {
  return new BinaryWriter(4).u32(n).finish();
}

/** The bytes a signed prekey's signature covers. */
export function signedPrekeySignedData(id: number, publicKey: X25519PublicKey): Uint8Array {
  return concatBytes(
    SIGNED_PREKEY_SIGNATURE_CONTEXT,
    u32(checkId(id, 'signed prekey id')),
    publicKey.encode(),
  );
}

/** The bytes a KEM prekey's signature covers. */
export function kemPrekeySignedData(lastResort: boolean, id: number, publicKey: KemPublicKey): Uint8Array {
  const kind = lastResort ? PrekeyKind.KemLastResort : PrekeyKind.KemOneTime;
  return concatBytes(
    KEM_PREKEY_SIGNATURE_CONTEXT,
    Uint8Array.of(kind),
    u32(checkId(id, 'KEM prekey id')),
    publicKey.encode(),
  );
}

/**
 * PQXDH §3.3: "Alice verifies the prekey signatures and aborts the protocol if verification
 * fails". Throws BAD_SIGNATURE naming the prekey.
 */
export function verifyBundleSignatures(bundle: SessionPrekeyBundle): void {
  translated('session setup', () => {
    const { identityKey, signedPrekey: spk, kemPrekey: kem } = bundle;
    assertSignature(
      identityKey,
      signedPrekeySignedData(spk.id, spk.publicKey),
      spk.signature,
      `signed prekey ${spk.id}`,
    );
    assertSignature(
      identityKey,
      kemPrekeySignedData(kem.lastResort, kem.id, kem.publicKey),
      kem.signature,
      `${kem.lastResort ? 'last-resort' : 'one-time'} KEM prekey ${kem.id}`,
    );
  });
}

/** Throws MALFORMED unless `id` is a u32. */
export function checkId(id: number, what: string): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_PREKEY_ID) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected an integer from 0 to ${MAX_PREKEY_ID}`,
    );
  }
  return id;
}

function checkSignature(signature: Uint8Array, what: string): void {
  assertUint8Array(signature, what);
  if (signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected ${ED25519_SIGNATURE_BYTES} bytes, got ${signature.length}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

export function encodeSignedPrekey(p: SignedPrekey): Uint8Array {
  checkSignature(p.signature, 'signed prekey signature');
  return new BinaryWriter(SIGNED_PREKEY_RECORD_BYTES)
    .u8(PREKEY_RECORD_VERSION)
    .u8(PrekeyKind.Signed)
    .u32(checkId(p.id, 'signed prekey id'))
    .bytes(p.publicKey.encode())
    .bytes(p.signature)
    .finish();
}

export function encodeKemPrekey(p: KemPrekey): Uint8Array {
  checkSignature(p.signature, 'KEM prekey signature');
  return new BinaryWriter(KEM_PREKEY_RECORD_BYTES)
    .u8(PREKEY_RECORD_VERSION)
    .u8(p.lastResort ? PrekeyKind.KemLastResort : PrekeyKind.KemOneTime)
    .u32(checkId(p.id, 'KEM prekey id'))
    .bytes(p.publicKey.encode())
    .bytes(p.signature)
    .finish();
}

export function encodeOneTimePrekey(p: OneTimePrekey): Uint8Array {
  return new BinaryWriter(ONE_TIME_PREKEY_RECORD_BYTES)
    .u8(PREKEY_RECORD_VERSION)
    .u8(PrekeyKind.OneTime)
    .u32(checkId(p.id, 'one-time prekey id'))
    .bytes(p.publicKey.encode())
    .finish();
}

/** Checks the length (exact), version and kind; returns a reader positioned at the id. */
function openRecord(bytes: Uint8Array, size: number, kinds: readonly PrekeyKind[], what: string) {
  assertUint8Array(bytes, what);
  assertMaxLength(bytes.length, size, what);
  if (bytes.length !== size) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected ${size} bytes, got ${bytes.length}`,
    );
  }
  const r = new BinaryReader(bytes, what);
  const version = r.u8('version');
  if (version !== PREKEY_RECORD_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `${what}: expected version ${PREKEY_RECORD_VERSION}, got ${version}`,
    );
  }
  const kind = r.u8('kind');
  if (!kinds.includes(kind)) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: unexpected record kind ${kind}`);
  }
  return { r, kind: kind as PrekeyKind };
}

export function decodeSignedPrekey(bytes: Uint8Array): SignedPrekey {
  const what = 'signed prekey record';
  const { r } = openRecord(bytes, SIGNED_PREKEY_RECORD_BYTES, [PrekeyKind.Signed], what);
  const id = r.u32('id');
  const key = r.fixed(X25519_KEY_ENCODING_BYTES, 'public key');
  const signature = r.fixed(ED25519_SIGNATURE_BYTES, 'signature');
  r.end();
  return { id, publicKey: translated(what, () => X25519PublicKey.decode(key)), signature };
}

export function decodeKemPrekey(bytes: Uint8Array): KemPrekey {
  const what = 'KEM prekey record';
  const { r, kind } = openRecord(
    bytes,
    KEM_PREKEY_RECORD_BYTES,
    [PrekeyKind.KemLastResort, PrekeyKind.KemOneTime],
    what,
  );
  const id = r.u32('id');
  const key = r.fixed(KEM_KEY_ENCODING_BYTES, 'public key');
  const signature = r.fixed(ED25519_SIGNATURE_BYTES, 'signature');
  r.end();
  return {
    id,
    publicKey: translated(what, () => KemPublicKey.decode(key)),
    signature,
    lastResort: kind === PrekeyKind.KemLastResort,
  };
}

export function decodeOneTimePrekey(bytes: Uint8Array): OneTimePrekey {
  const what = 'one-time prekey record';
  const { r } = openRecord(bytes, ONE_TIME_PREKEY_RECORD_BYTES, [PrekeyKind.OneTime], what);
  const id = r.u32('id');
  const key = r.fixed(X25519_KEY_ENCODING_BYTES, 'public key');
  r.end();
  return { id, publicKey: translated(what, () => X25519PublicKey.decode(key)) };
}

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

export function encodePrekeyBundle(b: SessionPrekeyBundle): Uint8Array {
  const opk = b.oneTimePrekey ? encodeOneTimePrekey(b.oneTimePrekey) : undefined;
  const w = new BinaryWriter(BUNDLE_FIXED_BYTES + (opk?.length ?? 0))
    .u8(PREKEY_RECORD_VERSION)
    .bytes(b.identityKey.encode())
    .bytes(encodeSignedPrekey(b.signedPrekey))
    .bytes(encodeKemPrekey(b.kemPrekey))
    .u8(opk ? 1 : 0);
  if (opk) w.bytes(opk);
  return w.finish();
}

export function decodePrekeyBundle(bytes: Uint8Array): SessionPrekeyBundle {
  const what = 'prekey bundle';
  assertUint8Array(bytes, what);
  assertMaxLength(bytes.length, MAX_PREKEY_BUNDLE_BYTES, what);
  if (bytes.length !== BUNDLE_FIXED_BYTES && bytes.length !== MAX_PREKEY_BUNDLE_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: expected ${BUNDLE_FIXED_BYTES} or ${MAX_PREKEY_BUNDLE_BYTES} bytes, got ${bytes.length}`,
    );
  }
  const r = new BinaryReader(bytes, what);
  const version = r.u8('version');
  if (version !== PREKEY_RECORD_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `${what}: expected version ${PREKEY_RECORD_VERSION}, got ${version}`,
    );
  }
  const identityBytes = r.fixed(IDENTITY_KEY_ENCODING_BYTES, 'identity key');
  const identityKey = translated(what, () => IdentityPublicKey.decode(identityBytes));
  const signedPrekey = decodeSignedPrekey(r.fixed(SIGNED_PREKEY_RECORD_BYTES, 'signed prekey'));
  const kemPrekey = decodeKemPrekey(r.fixed(KEM_PREKEY_RECORD_BYTES, 'KEM prekey'));
  const flag = r.u8('one-time prekey flag');
  if (flag > 1) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: one-time prekey flag must be 0 or 1, got ${flag}`,
    );
  }
  const oneTimePrekey =
    flag === 1 ? decodeOneTimePrekey(r.fixed(ONE_TIME_PREKEY_RECORD_BYTES, 'one-time prekey')) : undefined;
  r.end();
  return oneTimePrekey
    ? { identityKey, signedPrekey, kemPrekey, oneTimePrekey }
    : { identityKey, signedPrekey, kemPrekey };
}

// ---------------------------------------------------------------------------------------------
// The relay's transport shapes (events.ts): records travel as `{ id, record }`
// ---------------------------------------------------------------------------------------------

function checkRecordId(outer: number, inner: number, what: string): void {
  if (outer !== inner) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: the relay lists id ${outer} but the record holds id ${inner}`,
    );
  }
}

/**
 * The bundle of a `prekeys:claim` reply. The identity comes from the claimed address; the
 * records' signatures are checked later, by `Session.initiate`, against that identity.
 */
export function bundleFromClaim(claim: PrekeyBundle): SessionPrekeyBundle {
  const address = parseAddress(claim.address);
  const identityKey = translated('prekey bundle', () => new IdentityPublicKey(address.identityKey));
  const signedPrekey = decodeSignedPrekey(claim.signedPrekey.record);
  checkRecordId(claim.signedPrekey.id, signedPrekey.id, 'signed prekey');
  const kemPrekey = decodeKemPrekey(claim.kemPrekey.record);
  checkRecordId(claim.kemPrekey.id, kemPrekey.id, 'KEM prekey');
  if (!claim.oneTimePrekey) return { identityKey, signedPrekey, kemPrekey };
  const oneTimePrekey = decodeOneTimePrekey(claim.oneTimePrekey.record);
  checkRecordId(claim.oneTimePrekey.id, oneTimePrekey.id, 'one-time prekey');
  return { identityKey, signedPrekey, kemPrekey, oneTimePrekey };
}

/** `{ id, record }` of one prekey, as `prekeys:publish` carries it. */
export function prekeyRecordOf(p: SignedPrekey | KemPrekey | OneTimePrekey): PrekeyRecord {
  if ('lastResort' in p) return { id: p.id, record: encodeKemPrekey(p) };
  if ('signature' in p) return { id: p.id, record: encodeSignedPrekey(p) };
  return { id: p.id, record: encodeOneTimePrekey(p) };
}

/**
 * A `prekeys:publish` request for a publication. The relay's directory takes one KEM prekey per
 * device (the last-resort one); one-time KEM prekeys are not carried (see docs/protocol.md).
 * One-time prekeys go in batches of MAX_ONE_TIME_PREKEYS_PER_PUBLISH: pass `oneTimePrekeys` to
 * publish a refill only.
 */
export function publishRequestOf(parts: {
  readonly signedPrekey?: SignedPrekey;
  readonly lastResortKemPrekey?: KemPrekey;
  readonly oneTimePrekeys?: readonly OneTimePrekey[];
}): PrekeysPublishRequest {
  return {
    ...(parts.signedPrekey ? { signedPrekey: prekeyRecordOf(parts.signedPrekey) } : {}),
    ...(parts.lastResortKemPrekey ? { kemPrekey: prekeyRecordOf(parts.lastResortKemPrekey) } : {}),
    ...(parts.oneTimePrekeys?.length ? { oneTimePrekeys: parts.oneTimePrekeys.map(prekeyRecordOf) } : {}),
  };
}
