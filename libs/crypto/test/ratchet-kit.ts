/**
 * Test kit for the Double Ratchet: a fresh pair of sessions as session setup would leave them,
 * and a scripted conversation. Used by the ratchet specs and the benchmark; not exported from
 * the package.
 */
import {
  DoubleRatchet,
  concatBytes,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  randomBytes,
} from '../src/index.js';

export interface RatchetPair {
  readonly alice: DoubleRatchet;
  readonly bob: DoubleRatchet;
}

/** Two sessions sharing random session-setup outputs; AD binds two fresh identities. */
export function ratchetPair(): RatchetPair {
  const sharedSecret = randomBytes(32);
  const initiatorHeaderKey = randomBytes(32);
  const responderNextHeaderKey = randomBytes(32);
  const bobPrekey = generateX25519KeyPair();
  const associatedData = concatBytes(
    generateIdentityKeyPair().publicKey.encode(),
    generateIdentityKeyPair().publicKey.encode(),
  );
  return {
    alice: DoubleRatchet.initAlice({
      sharedSecret,
      remoteRatchetKey: bobPrekey.publicKey,
      initiatorHeaderKey,
      responderNextHeaderKey,
      associatedData,
    }),
    bob: DoubleRatchet.initBob({
      sharedSecret,
      ratchetKeyPair: bobPrekey,
      initiatorHeaderKey,
      responderNextHeaderKey,
      associatedData,
    }),
  };
}

export const utf8 = (s: string) => new TextEncoder().encode(s);
export const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Runs `fn` and returns what it threw (or fails the caller's expectation when nothing was thrown). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return new Error('expected an error, but the call succeeded');
}
