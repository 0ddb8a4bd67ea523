/**
 * Message headers: Signal's Double Ratchet specification §3.1 HEADER(dh_pair, pn, n) and §4
 * HENCRYPT / HDECRYPT. The plaintext header is `ratchet public key (32) | PN (u32 BE) | N (u32 BE)`;
 * it is encrypted under the chain's header key with AES-256-GCM and a random nonce (header
 * keys encrypt many headers: see encryption.ts), with the session's associated data as AD.
 */
import { concatBytes, u32be } from '../bytes.js';
import { CryptoError } from '../errors.js';
import { RANDOM_NONCE_OVERHEAD, openWithRandomNonce, sealWithRandomNonce } from '../encryption.js';

export const HEADER_BYTES = 32 + 4 + 4;
export const SEALED_HEADER_BYTES = HEADER_BYTES + RANDOM_NONCE_OVERHEAD;

export interface Header {
  /** The sender's current ratchet public key. */
  readonly dh: Uint8Array;
  /** Number of messages in the sender's previous sending chain. */
  readonly pn: number;
  /** This message's number in the sending chain. */
  readonly n: number;
}

export function encodeHeader(header: Header): Uint8Array {
  return concatBytes(header.dh, u32be(header.pn), u32be(header.n));
}

function decodeHeader(bytes: Uint8Array): Header {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dh: bytes.slice(0, 32), pn: view.getUint32(32, false), n: view.getUint32(36, false) };
}

/** HENCRYPT(hk, header). */
export function sealHeader(headerKey: Uint8Array, header: Header, ad: Uint8Array): Promise<Uint8Array> {
  return sealWithRandomNonce(headerKey, encodeHeader(header), ad);
}

/** HDECRYPT(hk, enc_header): the header, or undefined when this key does not open it. */
export async function openHeader(
  headerKey: Uint8Array,
  sealed: Uint8Array,
  ad: Uint8Array,
): Promise<Header | undefined> {
  try {
    return decodeHeader(await openWithRandomNonce(headerKey, sealed, ad));
  } catch (err) {
    if (CryptoError.is(err)) return undefined;
    throw err;
  }
}
