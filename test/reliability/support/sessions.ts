/**
 * Two parties with an established end-to-end session (both directions have sent, so every later
 * message is a plain ratchet message), on the protocol's own Session and PrekeyStore, and a
 * seeded random generator for reproducible orders.
 */
import { type Session as SessionType, Session } from '@usm/protocol';
import { type Party, claim, party, utf8 } from '../../../libs/protocol/src/session/session-kit.test.js';

export interface Pair {
  alice: Party;
  bob: Party;
  toBob: SessionType;
  toAlice: SessionType;
}

/** Alice sets up a session with Bob's bundle; one message each way. */
export async function establishedPair(): Promise<Pair> {
  const alice = party(2);
  const bob = party(2);
  const toBob = Session.initiate(alice.identity, claim(bob), bob.publicKey);
  const { session: toAlice } = await Session.accept(
    bob.prekeys,
    await toBob.encrypt(utf8('hello')),
    alice.publicKey,
  );
  await toBob.decrypt(await toAlice.encrypt(utf8('hello back')), alice.prekeys);
  return { alice, bob, toBob, toAlice };
}

/** mulberry32: a small seeded generator, so a failing order can be replayed from its seed. */
export function seeded(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates with `random`. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
