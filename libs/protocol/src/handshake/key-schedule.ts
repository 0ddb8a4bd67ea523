/**
 * Transcript hash and key schedule of the client <-> relay handshake, in the shape of TLS 1.3
 * (RFC 8446 §4.4.1 transcript hash, §7.1 key schedule):
 *
 *   handshake_secret = HKDF-Extract(salt = HANDSHAKE_EXTRACT_SALT, ikm = X25519(e_C, e_R))
 *   TH_keys          = SHA-256(Init | Response header)          (both ephemerals, both times, nonce, client identity)
 *   material_key     = HKDF-Expand(handshake_secret, RELAY_MATERIAL_KEY_LABEL  | TH_keys, 32)
 *   relay_finished   = HKDF-Expand(handshake_secret, RELAY_FINISHED_KEY_LABEL  | TH_keys, 32)
 *   client_finished  = HKDF-Expand(handshake_secret, CLIENT_FINISHED_KEY_LABEL | TH_keys, 32)
 *   master_secret    = HKDF-Expand(handshake_secret, MASTER_SECRET_LABEL       | TH_keys, 32)
 *   TH_final         = SHA-256(the whole transcript, through the client's Finished MAC)
 *   c2r key | r2c key | session id = HKDF-Expand(master_secret, <label> | TH_final, 32) each
 *
 * The transcript is the handshake in clear, as in TLS (which hashes handshake messages, not
 * records): Init | Response header | relay identity | relay signature | relay MAC | client
 * signature | client MAC. The relay identity and signature travel sealed, but both sides hash
 * them in clear. Labels are fixed strings and the hash has a fixed length, so `label | hash`
 * never collides across labels. Every intermediate secret is wiped once its keys are derived.
 */
import { concatBytes, hkdfExpand, hkdfExtract, hmacSha256, sha256Sync, wipe } from '@usm/crypto';
import {
  CLIENT_FINISHED_KEY_LABEL,
  CLIENT_TO_RELAY_KEY_LABEL,
  HANDSHAKE_EXTRACT_SALT,
  MASTER_SECRET_LABEL,
  RELAY_FINISHED_KEY_LABEL,
  RELAY_MATERIAL_KEY_LABEL,
  RELAY_TO_CLIENT_KEY_LABEL,
  REPLAY_KEY_LABEL,
  SESSION_ID_LABEL,
} from './kdf-labels.js';
import { SESSION_ID_BYTES, TRAFFIC_KEY_BYTES } from './limits.js';

const KEY_BYTES = 32;

/** The handshake transcript so far: messages (in clear) appended in order. */
export class Transcript {
  readonly #parts: Uint8Array[] = [];

  append(...parts: Uint8Array[]): this {
    this.#parts.push(...parts);
    return this;
  }

  /** SHA-256 of everything appended so far (RFC 8446 §4.4.1 Transcript-Hash). */
  hash(): Uint8Array {
    return sha256Sync(concatBytes(...this.#parts));
  }
}

/** Keys derived once both ephemerals are known (after the Response header). */
export interface HandshakeKeys {
  /** One-time AES-256-GCM key for the relay material (consumed by a MessageKey). */
  readonly materialKey: Uint8Array;
  readonly relayFinishedKey: Uint8Array;
  readonly clientFinishedKey: Uint8Array;
  readonly masterSecret: Uint8Array;
}

/** The key schedule from the ephemeral-ephemeral DH output; `dh` is wiped. */
export function deriveHandshakeKeys(dh: Uint8Array, thKeys: Uint8Array): HandshakeKeys {
  const handshakeSecret = hkdfExtract(HANDSHAKE_EXTRACT_SALT, dh);
  try {
    const expand = (label: Uint8Array) => hkdfExpand(handshakeSecret, concatBytes(label, thKeys), KEY_BYTES);
    return {
      materialKey: expand(RELAY_MATERIAL_KEY_LABEL),
      relayFinishedKey: expand(RELAY_FINISHED_KEY_LABEL),
      clientFinishedKey: expand(CLIENT_FINISHED_KEY_LABEL),
      masterSecret: expand(MASTER_SECRET_LABEL),
    };
  } finally {
    wipe(dh, handshakeSecret);
  }
}

export function wipeHandshakeKeys(keys: HandshakeKeys | undefined): void {
  if (keys) wipe(keys.materialKey, keys.relayFinishedKey, keys.clientFinishedKey, keys.masterSecret);
}

/** The session's keys, from the master secret and the full transcript. */
export interface SessionSecrets {
  readonly clientToRelay: Uint8Array;
  readonly relayToClient: Uint8Array;
  readonly sessionId: Uint8Array;
}

export function deriveSessionSecrets(masterSecret: Uint8Array, thFinal: Uint8Array): SessionSecrets {
  const expand = (label: Uint8Array, length: number) =>
    hkdfExpand(masterSecret, concatBytes(label, thFinal), length);
  return {
    clientToRelay: expand(CLIENT_TO_RELAY_KEY_LABEL, TRAFFIC_KEY_BYTES),
    relayToClient: expand(RELAY_TO_CLIENT_KEY_LABEL, TRAFFIC_KEY_BYTES),
    sessionId: expand(SESSION_ID_LABEL, SESSION_ID_BYTES),
  };
}

/** A Finished MAC: HMAC-SHA-256(finished key, transcript hash) (RFC 8446 §4.4.4). */
export function finishedMac(finishedKey: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
  return hmacSha256(finishedKey, transcriptHash);
}

/** What an Ed25519 signature covers: context string (ends in 0x00) | transcript hash (RFC 8446 §4.4.3). */
export function signedContent(context: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
  return concatBytes(context, transcriptHash);
}

/** The replay store's key for an Init: SHA-256(REPLAY_KEY_LABEL | client identity | nonce). */
export function replayKey(encodedIdentity: Uint8Array, nonce: Uint8Array): Uint8Array {
  return sha256Sync(concatBytes(REPLAY_KEY_LABEL, encodedIdentity, nonce));
}
