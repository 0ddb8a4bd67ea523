/**
 * The outer layer of this folder's pickles (session, prekey store), as in @usm/crypto's ratchet
 * pickles: `format (1) | body`, where format 0 is a plain body and format 1 is
 * `nonce (12) | AES-256-GCM(key, body, AD = label) | tag (16)`. A pickle written with a key must
 * be read with it: a plain pickle where an encrypted one is expected is refused, so whoever can
 * write to storage cannot swap in a state of their own making. Every failure is BAD_PICKLE.
 */
import {
  CryptoError,
  PICKLE_KEY_BYTES,
  concatBytes,
  openWithRandomNonce,
  sealWithRandomNonce,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

const FORMAT_PLAIN = 0;
const FORMAT_ENCRYPTED = 1;

function badPickle(what: string, message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.BadPickle, `${what}: ${message}`);
}

function checkKey(key: Uint8Array | undefined, what: string): void {
  if (key !== undefined && (!(key instanceof Uint8Array) || key.length !== PICKLE_KEY_BYTES)) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      `${what}: the pickle key must be ${PICKLE_KEY_BYTES} bytes`,
    );
  }
}

export async function sealPickle(
  body: Uint8Array,
  ad: Uint8Array,
  what: string,
  key?: Uint8Array,
): Promise<Uint8Array> {
  checkKey(key, what);
  if (!key) return concatBytes(Uint8Array.of(FORMAT_PLAIN), body);
  return concatBytes(Uint8Array.of(FORMAT_ENCRYPTED), await sealWithRandomNonce(key, body, ad));
}

export async function openPickle(
  pickle: Uint8Array,
  ad: Uint8Array,
  what: string,
  key?: Uint8Array,
): Promise<Uint8Array> {
  checkKey(key, what);
  if (!(pickle instanceof Uint8Array) || pickle.length < 1) throw badPickle(what, 'empty or not bytes');
  const format = pickle[0];
  if (format === FORMAT_PLAIN) {
    if (key) throw badPickle(what, 'expected an encrypted pickle, got a plain one');
    return pickle.slice(1); // a copy: the caller wipes the body, never the input
  }
  if (format !== FORMAT_ENCRYPTED) throw badPickle(what, `unknown format ${format}`);
  if (!key) throw badPickle(what, 'the pickle is encrypted: pass its key');
  try {
    return await openWithRandomNonce(key, pickle.subarray(1), ad);
  } catch (err) {
    if (CryptoError.is(err)) throw badPickle(what, 'does not decrypt (another key, or corrupted)');
    throw err;
  }
}

const DECODE_CODES: readonly ProtocolErrorCode[] = [
  ProtocolErrorCode.Malformed,
  ProtocolErrorCode.TooLarge,
  ProtocolErrorCode.UnsupportedVersion,
  ProtocolErrorCode.InvalidKey,
];

/** Runs a pickle body's parser, turning any decode refusal into BAD_PICKLE (other codes pass). */
export function parsePickle<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (CryptoError.is(err) || (ProtocolError.is(err) && DECODE_CODES.includes(err.code))) {
      const prefix = `${what}: `;
      throw badPickle(what, err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message);
    }
    throw err;
  }
}

export { badPickle };
