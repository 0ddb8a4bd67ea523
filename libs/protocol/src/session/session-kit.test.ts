/**
 * Test kit of the session specs (the `.test.ts` name keeps it out of the published build and out
 * of jest's `*.spec.ts` match): parties with prekey stores, a directory that hands out each
 * one-time prekey once (as the relay does), an exact-error matcher, and the attacker's tools,
 * which rewrite a prekey message's header with the same codecs.
 */
import { expect } from '@jest/globals';
import { type IdentityKeyPair, type IdentityPublicKey, generateIdentityKeyPair, ready } from '@usm/crypto';
import { ProtocolError, type ProtocolErrorCode } from '../errors.js';
import { PrekeyStore } from './prekey-store.js';
import type { SessionPrekeyBundle } from './prekeys.js';
import {
  type PrekeyHeader,
  SessionMessageType,
  decodeSessionMessage,
  encodeSessionMessage,
} from './session-message.js';

export { ready };

export interface Party {
  readonly identity: IdentityKeyPair;
  readonly publicKey: IdentityPublicKey;
  prekeys: PrekeyStore;
}

/** A party with `oneTime` one-time prekeys published. */
export function party(oneTime = 5): Party {
  const identity = generateIdentityKeyPair();
  const prekeys = PrekeyStore.create(identity);
  if (oneTime > 0) prekeys.generateOneTimePrekeys(oneTime);
  return { identity, publicKey: identity.publicKey, prekeys };
}

const handedOut = new WeakMap<PrekeyStore, Set<number>>();

/**
 * A claim, as the relay's directory answers it: a one-time prekey not handed out before (none
 * when `oneTime` is false or none is left), and a one-time KEM prekey when `kemOneTime` is set
 * and one is left, else the last-resort one.
 */
export function claim(
  owner: Party,
  { oneTime = true, kemOneTime = false }: { oneTime?: boolean; kemOneTime?: boolean } = {},
): SessionPrekeyBundle {
  const pub = owner.prekeys.publication();
  const seen = handedOut.get(owner.prekeys) ?? new Set<number>();
  handedOut.set(owner.prekeys, seen);
  const opk = oneTime ? pub.oneTimePrekeys.find((p) => !seen.has(p.id)) : undefined;
  if (opk) seen.add(opk.id);
  const kem =
    (kemOneTime && pub.oneTimeKemPrekeys.find((p) => !seen.has(-p.id - 1))) || pub.lastResortKemPrekey;
  if (!kem.lastResort) seen.add(-kem.id - 1);
  return {
    identityKey: pub.identityKey,
    signedPrekey: pub.signedPrekey,
    kemPrekey: kem,
    ...(opk ? { oneTimePrekey: opk } : {}),
  };
}

/** Rewrites the header of a prekey message (the attacker's tool). */
export function rewriteHeader(message: Uint8Array, change: (h: PrekeyHeader) => PrekeyHeader): Uint8Array {
  const m = decodeSessionMessage(message);
  if (m.type !== SessionMessageType.Prekey) throw new Error('not a prekey message');
  return encodeSessionMessage({ ...m, header: change(m.header) });
}

export const utf8 = (s: string) => new TextEncoder().encode(s);
export const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Awaits `op` and asserts it fails with exactly `code` (and `message` when given). */
export async function expectProtocolError(
  op: Promise<unknown> | (() => unknown),
  code: ProtocolErrorCode,
  message?: string,
): Promise<ProtocolError> {
  let caught: unknown;
  try {
    await (typeof op === 'function' ? op() : op);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  const err = caught as ProtocolError;
  expect({ code: err.code, ...(message === undefined ? {} : { message: err.message }) }).toEqual({
    code,
    ...(message === undefined ? {} : { message }),
  });
  return err;
}
