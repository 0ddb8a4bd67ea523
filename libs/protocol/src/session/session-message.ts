/**
 * What a session puts in an envelope's ciphertext: either a prekey message (PQXDH revision 3,
 * §3.3 "Sending the initial message", shaped like Signal's PreKeySignalMessage) or a plain
 * Double Ratchet message (like SignalMessage).
 *
 * Layout (big-endian):
 *   version u8 (1) | type u8
 *   type 1, prekey message:
 *     flags u8            bit 0: a one-time prekey was used; bit 1: the KEM prekey is a
 *                         one-time one (else the last-resort one); other bits 0
 *     IK_A (34)           the initiator's Ed25519 identity key (`version | type | key`)
 *     EK_A (34)           the initiator's ephemeral X25519 key
 *     SPK id u32          which signed prekey of the responder was used
 *     [OPK id u32]        which one-time prekey, when bit 0 is set
 *     KEM prekey id u32   which KEM prekey
 *     CT (1120)           the X-Wing ciphertext of KEM-ENC(PQSPK_B)
 *     ratchet message     the rest: the first (or a later, while unanswered) ratchet message
 *   type 2, ratchet message: the rest is a Double Ratchet message
 * Everything before the ratchet message is the "prekey header": the initiator repeats it on
 * every message until the responder answers, so that a lost first message does not wedge the
 * session, and its hash (the setup id) names the session it sets up.
 */
import {
  IdentityPublicKey,
  RATCHET_MESSAGE_OVERHEAD,
  X25519PublicKey,
  XWING_CIPHERTEXT_BYTES,
  concatBytes,
  sha256Sync,
  toHex,
} from '@usm/crypto';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { MAX_ENVELOPE_CIPHERTEXT_BYTES } from '../limits.js';
import { SETUP_ID_LABEL } from './kdf-labels.js';
import { checkId } from './prekeys.js';

export const SESSION_MESSAGE_VERSION = 1;

/** A session message is an envelope's ciphertext: the same limit. */
export const MAX_SESSION_MESSAGE_BYTES = MAX_ENVELOPE_CIPHERTEXT_BYTES;

export enum SessionMessageType {
  Prekey = 1,
  Ratchet = 2,
}

const FLAG_ONE_TIME_PREKEY = 0x01;
const FLAG_ONE_TIME_KEM_PREKEY = 0x02;
const KEY_ENCODING_BYTES = 34;

/** The largest prekey header (with a one-time prekey id). */
export const MAX_PREKEY_HEADER_BYTES = 1 + 2 * 34 + 4 + 4 + 4 + XWING_CIPHERTEXT_BYTES;

/** PQXDH §3.3: what the initiator sends so the responder can compute the same SK. */
export interface PrekeyHeader {
  /** IK_A. */
  readonly identityKey: IdentityPublicKey;
  /** EK_A. */
  readonly ephemeralKey: X25519PublicKey;
  readonly signedPrekeyId: number;
  /** Absent when the bundle had no one-time prekey (DH4 omitted). */
  readonly oneTimePrekeyId?: number;
  readonly kemPrekeyId: number;
  /** True when the KEM prekey used was the last-resort one. */
  readonly kemPrekeyLastResort: boolean;
  /** CT = KEM-ENC(PQSPK_B), XWING_CIPHERTEXT_BYTES long. */
  readonly kemCiphertext: Uint8Array;
}

export type SessionMessage =
  | {
      readonly type: SessionMessageType.Prekey;
      readonly header: PrekeyHeader;
      readonly ratchetMessage: Uint8Array;
    }
  | { readonly type: SessionMessageType.Ratchet; readonly ratchetMessage: Uint8Array };

function headerSize(h: PrekeyHeader): number {
  return (
    1 + 2 * KEY_ENCODING_BYTES + 4 + (h.oneTimePrekeyId === undefined ? 0 : 4) + 4 + XWING_CIPHERTEXT_BYTES
  );
}

/** The prekey header's bytes (flags through CT). */
export function encodePrekeyHeader(h: PrekeyHeader): Uint8Array {
  assertUint8Array(h.kemCiphertext, 'KEM ciphertext');
  if (h.kemCiphertext.length !== XWING_CIPHERTEXT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `KEM ciphertext: expected ${XWING_CIPHERTEXT_BYTES} bytes, got ${h.kemCiphertext.length}`,
    );
  }
  const flags =
    (h.oneTimePrekeyId === undefined ? 0 : FLAG_ONE_TIME_PREKEY) |
    (h.kemPrekeyLastResort ? 0 : FLAG_ONE_TIME_KEM_PREKEY);
  const w = new BinaryWriter(headerSize(h))
    .u8(flags)
    .bytes(h.identityKey.encode())
    .bytes(h.ephemeralKey.encode())
    .u32(checkId(h.signedPrekeyId, 'signed prekey id'));
  if (h.oneTimePrekeyId !== undefined) w.u32(checkId(h.oneTimePrekeyId, 'one-time prekey id'));
  return w.u32(checkId(h.kemPrekeyId, 'KEM prekey id')).bytes(h.kemCiphertext).finish();
}

/**
 * The setup id: hex SHA-256(label || prekey header). Public (it hashes public values only) and
 * unique per setup (EK_A and CT are fresh), it names a session in replay memory and logs.
 */
export function setupIdOf(header: PrekeyHeader | Uint8Array): string {
  const bytes = header instanceof Uint8Array ? header : encodePrekeyHeader(header);
  return toHex(sha256Sync(concatBytes(SETUP_ID_LABEL, bytes)));
}

function checkRatchetMessage(ratchetMessage: Uint8Array): void {
  assertUint8Array(ratchetMessage, 'ratchet message');
  if (ratchetMessage.length < RATCHET_MESSAGE_OVERHEAD) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `session message: the ratchet message needs at least ${RATCHET_MESSAGE_OVERHEAD} bytes, got ${ratchetMessage.length}`,
    );
  }
}

export function encodeSessionMessage(m: SessionMessage): Uint8Array {
  checkRatchetMessage(m.ratchetMessage);
  const header = m.type === SessionMessageType.Prekey ? encodePrekeyHeader(m.header) : new Uint8Array(0);
  const out = concatBytes(Uint8Array.of(SESSION_MESSAGE_VERSION, m.type), header, m.ratchetMessage);
  assertMaxLength(out.length, MAX_SESSION_MESSAGE_BYTES, 'session message');
  return out;
}

function readKey<T>(r: BinaryReader, field: string, decode: (b: Uint8Array) => T): T {
  const bytes = r.fixed(KEY_ENCODING_BYTES, field);
  try {
    return decode(bytes);
  } catch {
    // The key encoding's version or type byte is wrong (length was checked by the reader).
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `session message: ${field} is not a valid key encoding`,
    );
  }
}

export function decodeSessionMessage(bytes: Uint8Array): SessionMessage {
  const what = 'session message';
  assertUint8Array(bytes, what);
  assertMaxLength(bytes.length, MAX_SESSION_MESSAGE_BYTES, what);
  const r = new BinaryReader(bytes, what);
  const version = r.u8('version');
  if (version !== SESSION_MESSAGE_VERSION) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `${what}: expected version ${SESSION_MESSAGE_VERSION}, got ${version}`,
    );
  }
  const type = r.u8('type');
  if (type === SessionMessageType.Ratchet) {
    const ratchetMessage = r.fixed(r.remaining, 'ratchet message');
    checkRatchetMessage(ratchetMessage);
    return { type, ratchetMessage };
  }
  if (type !== SessionMessageType.Prekey) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: unknown type ${type}`);
  }
  const header = readPrekeyHeader(r, what);
  const ratchetMessage = r.fixed(r.remaining, 'ratchet message');
  checkRatchetMessage(ratchetMessage);
  return { type: SessionMessageType.Prekey, header, ratchetMessage };
}

function readPrekeyHeader(r: BinaryReader, what: string): PrekeyHeader {
  const flags = r.u8('flags');
  if ((flags & ~(FLAG_ONE_TIME_PREKEY | FLAG_ONE_TIME_KEM_PREKEY)) !== 0) {
    throw new ProtocolError(ProtocolErrorCode.Malformed, `${what}: unknown flags ${flags}`);
  }
  const identityKey = readKey(r, 'identity key', IdentityPublicKey.decode);
  const ephemeralKey = readKey(r, 'ephemeral key', X25519PublicKey.decode);
  const signedPrekeyId = r.u32('signed prekey id');
  const oneTimePrekeyId = flags & FLAG_ONE_TIME_PREKEY ? r.u32('one-time prekey id') : undefined;
  const kemPrekeyId = r.u32('KEM prekey id');
  const kemCiphertext = r.fixed(XWING_CIPHERTEXT_BYTES, 'KEM ciphertext');
  return {
    identityKey,
    ephemeralKey,
    signedPrekeyId,
    ...(oneTimePrekeyId === undefined ? {} : { oneTimePrekeyId }),
    kemPrekeyId,
    kemPrekeyLastResort: (flags & FLAG_ONE_TIME_KEM_PREKEY) === 0,
    kemCiphertext,
  };
}

/** Decodes exactly one prekey header (as `encodePrekeyHeader` writes it). */
export function decodePrekeyHeader(bytes: Uint8Array): PrekeyHeader {
  const what = 'prekey header';
  assertUint8Array(bytes, what);
  assertMaxLength(bytes.length, MAX_PREKEY_HEADER_BYTES, what);
  const r = new BinaryReader(bytes, what);
  const header = readPrekeyHeader(r, what);
  r.end();
  return header;
}
