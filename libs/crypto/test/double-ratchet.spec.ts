/**
 * The Double Ratchet with header encryption (Signal spec §4): behaviour, limits, forward
 * secrecy, post-compromise security, and fast-check properties over whole conversations.
 */
import { inspect } from 'node:util';
import {
  CryptoError,
  CryptoErrorCode,
  DoubleRatchet,
  MAX_RECEIVING_CHAINS,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  RATCHET_MESSAGE_OVERHEAD,
  aesGcm,
  randomBytes,
  ready,
  setAesGcmBackend,
} from '../src/index.js';
import { caught, ratchetPair, text, utf8 } from './ratchet-kit.js';

beforeAll(() => ready());

function expectCode(err: unknown, code: CryptoErrorCode) {
  if (!CryptoError.is(err, code)) throw new Error(`expected CryptoError ${code}, got ${inspect(err)}`);
}

describe('DoubleRatchet', () => {
  it('carries messages both ways across DH turns', async () => {
    const { alice, bob } = ratchetPair();
    expect(bob.canSend).toBe(false);
    for (let turn = 0; turn < 4; turn++) {
      const a = await alice.encrypt(utf8(`a${turn}`));
      expect(a.length).toBe(RATCHET_MESSAGE_OVERHEAD + 2);
      expect(text(await bob.decrypt(a))).toBe(`a${turn}`);
      expect(text(await alice.decrypt(await bob.encrypt(utf8(`b${turn}`))))).toBe(`b${turn}`);
    }
  });

  it('refuses to let the responder send first', async () => {
    const { bob } = ratchetPair();
    expectCode(await caught(() => bob.encrypt(utf8('x'))), CryptoErrorCode.SessionNotReady);
  });

  it('names a replay DUPLICATE_MESSAGE, in the current and in an older chain, and stays usable', async () => {
    const { alice, bob } = ratchetPair();
    const first = await alice.encrypt(utf8('one'));
    await bob.decrypt(first);
    const err = await caught(() => bob.decrypt(first));
    expectCode(err, CryptoErrorCode.DuplicateMessage);
    expect((err as Error).message).toBe(
      'ratchet: message 0 of this chain was already decrypted (or its skipped key was evicted)',
    );
    await alice.decrypt(await bob.encrypt(utf8('turn')));
    await bob.decrypt(await alice.encrypt(utf8('new chain')));
    expectCode(await caught(() => bob.decrypt(first)), CryptoErrorCode.DuplicateMessage);
    expect(text(await bob.decrypt(await alice.encrypt(utf8('still fine'))))).toBe('still fine');
  });

  it('refuses a message from another session with UNKNOWN_HEADER_KEY', async () => {
    const one = ratchetPair();
    const two = ratchetPair();
    const err = await caught(async () => two.bob.decrypt(await one.alice.encrypt(utf8('x'))));
    expectCode(err, CryptoErrorCode.UnknownHeaderKey);
  });

  it('refuses a jump past MAX_SKIP and then decrypts the next in-range message', async () => {
    const { alice, bob } = ratchetPair();
    const messages: Uint8Array[] = [];
    for (let i = 0; i <= MAX_SKIP + 1; i++) messages.push(await alice.encrypt(utf8(`m${i}`)));
    const err = await caught(() => bob.decrypt(messages[MAX_SKIP + 1]!));
    expectCode(err, CryptoErrorCode.JumpTooLarge);
    expect((err as Error).message).toBe(
      `ratchet: message ${MAX_SKIP + 1} is ${MAX_SKIP + 1} ahead of the next expected (0); at most ${MAX_SKIP} may be skipped`,
    );
    // Exactly MAX_SKIP ahead is allowed.
    expect(text(await bob.decrypt(messages[MAX_SKIP]!))).toBe(`m${MAX_SKIP}`);
    expect(bob.skippedKeyCount).toBe(MAX_SKIP);
    expect(text(await bob.decrypt(messages[MAX_SKIP + 1]!))).toBe(`m${MAX_SKIP + 1}`);
    expect(text(await bob.decrypt(messages[3]!))).toBe('m3');
    expect(bob.skippedKeyCount).toBe(MAX_SKIP - 1);
  });

  it('bounds skipped keys in total and evicts the oldest first', async () => {
    const { alice, bob } = ratchetPair();
    // Three chains from Alice, each with MAX_SKIP messages skipped: 3,000 keys, 2,000 kept.
    const firsts: Uint8Array[] = [];
    for (let chain = 0; chain < 3; chain++) {
      const sent: Uint8Array[] = [];
      for (let i = 0; i <= MAX_SKIP; i++) sent.push(await alice.encrypt(utf8(`c${chain}m${i}`)));
      firsts.push(sent[0]!);
      await bob.decrypt(sent[MAX_SKIP]!);
      await alice.decrypt(await bob.encrypt(utf8('turn')));
    }
    expect(bob.skippedKeyCount).toBe(MAX_SKIPPED_KEYS);
    // The oldest chain's keys went first.
    expectCode(await caught(() => bob.decrypt(firsts[0]!)), CryptoErrorCode.DuplicateMessage);
    expect(text(await bob.decrypt(firsts[1]!))).toBe('c1m0');
    expect(text(await bob.decrypt(firsts[2]!))).toBe('c2m0');
  });

  it(`remembers at most ${MAX_RECEIVING_CHAINS} receiving chains`, async () => {
    const { alice, bob } = ratchetPair();
    const firsts: Uint8Array[] = [];
    for (let chain = 0; chain < MAX_RECEIVING_CHAINS + 1; chain++) {
      const m = await alice.encrypt(utf8(`c${chain}`));
      firsts.push(m);
      await bob.decrypt(m);
      await alice.decrypt(await bob.encrypt(utf8('turn')));
    }
    // The first chain is forgotten (its header key too); the second is still known.
    expectCode(await caught(() => bob.decrypt(firsts[0]!)), CryptoErrorCode.UnknownHeaderKey);
    expectCode(await caught(() => bob.decrypt(firsts[1]!)), CryptoErrorCode.DuplicateMessage);
  });

  it('forward secrecy: a state captured after message k cannot decrypt message k again', async () => {
    const { alice, bob } = ratchetPair();
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) sent.push(await alice.encrypt(utf8(`m${i}`)));
    for (let k = 0; k < 5; k++) {
      await bob.decrypt(sent[k]!);
      const captured = await DoubleRatchet.fromPickle(await bob.pickle());
      expectCode(await caught(() => captured.decrypt(sent[k]!)), CryptoErrorCode.DuplicateMessage);
    }
  });

  it('post-compromise security: a stolen state cannot read messages after the next DH round trip', async () => {
    const { alice, bob } = ratchetPair();
    await bob.decrypt(await alice.encrypt(utf8('hello')));
    const stolen = await DoubleRatchet.fromPickle(await bob.pickle());
    // The thief follows every message Alice sends. Until Bob has put a ratchet key into use that
    // was made after the theft, it reads along: that is what compromise means.
    const readAlong = async (m: Uint8Array) => text(await stolen.decrypt(m));
    const early = await alice.encrypt(utf8('early'));
    expect(await readAlong(early)).toBe('early');
    await bob.decrypt(early);
    await alice.decrypt(await bob.encrypt(utf8('turn 1'))); // Bob still on his stolen ratchet key
    const sameRound = await alice.encrypt(utf8('same round'));
    expect(await readAlong(sameRound)).toBe('same round');
    await bob.decrypt(sameRound); // Bob makes a fresh ratchet key here
    await alice.decrypt(await bob.encrypt(utf8('turn 2'))); // ...and Alice answers on it
    const later = await alice.encrypt(utf8('secret'));
    // With header encryption the next header key runs one DH step ahead, so the thief still
    // opens this header (it learns counters, not content); the message key comes from
    // DH(Bob's fresh key, Alice's new key), which it cannot compute: the body's tag fails.
    const err = await caught(() => stolen.decrypt(later));
    expectCode(err, CryptoErrorCode.BadMac);
    expect(text(await bob.decrypt(later))).toBe('secret');
    // One more round trip and even the headers are closed to it.
    await alice.decrypt(await bob.encrypt(utf8('turn 3')));
    const evenLater = await alice.encrypt(utf8('more'));
    expectCode(await caught(() => stolen.decrypt(evenLater)), CryptoErrorCode.UnknownHeaderKey);
    expect(text(await bob.decrypt(evenLater))).toBe('more');
  });

  it('leaves the session unchanged when the body is tampered with', async () => {
    const { alice, bob } = ratchetPair();
    const m = await alice.encrypt(utf8('payload'));
    const before = await bob.pickle();
    const bad = m.slice();
    bad[bad.length - 1]! ^= 0x80;
    expectCode(await caught(() => bob.decrypt(bad)), CryptoErrorCode.BadMac);
    expect(await bob.pickle()).toEqual(before);
    expect(text(await bob.decrypt(m))).toBe('payload');
  });

  it('binds a per-message context (the envelope id) into the body: another context is BAD_MAC and changes nothing', async () => {
    const { alice, bob } = ratchetPair();
    const id = randomBytes(16);
    const m = await alice.encrypt(utf8('bound'), id);
    const before = await bob.pickle();
    const other = id.slice();
    other[0]! ^= 1;
    expectCode(await caught(() => bob.decrypt(m, other)), CryptoErrorCode.BadMac);
    expectCode(await caught(() => bob.decrypt(m)), CryptoErrorCode.BadMac);
    expect(await bob.pickle()).toEqual(before);
    expect(text(await bob.decrypt(m, id))).toBe('bound');
  });

  it('refuses a message with a bad version byte or too short', async () => {
    const { alice, bob } = ratchetPair();
    const m = await alice.encrypt(utf8('x'));
    const bad = m.slice();
    bad[0] = 9;
    const err = await caught(() => bob.decrypt(bad));
    expectCode(err, CryptoErrorCode.MalformedInput);
    expect((err as Error).message).toBe('ratchet message: expected version 1, got 9');
    expectCode(
      await caught(() => bob.decrypt(m.subarray(0, RATCHET_MESSAGE_OVERHEAD - 1))),
      CryptoErrorCode.MalformedInput,
    );
  });

  it('pickles exactly, plain and encrypted, and refuses a wrong key or a changed byte', async () => {
    const { alice, bob } = ratchetPair();
    await bob.decrypt(await alice.encrypt(utf8('a')));
    await alice.encrypt(utf8('skipped'));
    await bob.decrypt(await alice.encrypt(utf8('b')));
    const plain = await bob.pickle();
    expect(await (await DoubleRatchet.fromPickle(plain)).pickle()).toEqual(plain);
    const key = randomBytes(32);
    const sealed = await bob.pickle(key);
    expect(await (await DoubleRatchet.fromPickle(sealed, key)).pickle()).toEqual(plain);
    const wrongKey = await caught(() => DoubleRatchet.fromPickle(sealed, randomBytes(32)));
    expectCode(wrongKey, CryptoErrorCode.BadPickle);
    expect((wrongKey as Error).message).toBe('pickle: cannot be decrypted with this key (or was modified)');
    const flipped = sealed.slice();
    flipped[40]! ^= 1;
    expectCode(await caught(() => DoubleRatchet.fromPickle(flipped, key)), CryptoErrorCode.BadPickle);
    const future = plain.slice();
    future[1] = 2;
    const err = await caught(() => DoubleRatchet.fromPickle(future));
    expect((err as Error).message).toBe('pickle: expected version 1, got 2');
    expectCode(
      await caught(() => DoubleRatchet.fromPickle(plain.subarray(0, plain.length - 1))),
      CryptoErrorCode.BadPickle,
    );
    expectCode(
      await caught(() => DoubleRatchet.fromPickle(Uint8Array.of(...plain, 0))),
      CryptoErrorCode.BadPickle,
    );
  });

  it('never prints a key', async () => {
    const { alice } = ratchetPair();
    await alice.encrypt(utf8('x'));
    expect(inspect(alice)).toBe('DoubleRatchet(sending #1, receiving chains 0)');
    expect(JSON.stringify({ alice })).toBe('{"alice":"DoubleRatchet(sending #1, receiving chains 0)"}');
  });

  it('serializes concurrent operations on one session', async () => {
    const { alice, bob } = ratchetPair();
    const sent = await Promise.all([0, 1, 2, 3].map((i) => alice.encrypt(utf8(`m${i}`))));
    const got = await Promise.all(sent.reverse().map((m) => bob.decrypt(m)));
    expect(got.map(text).sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('opens a reply and a burst message with one header trial each (AES-GCM opens counted)', async () => {
    // Costs, not times: AES-GCM opens per message (header trials + the body). A reply is tried
    // under NHKr first once the receiver has sent on its ratchet key; a burst under HKr first.
    const inner = aesGcm();
    let opens = 0;
    setAesGcmBackend({
      name: 'counting',
      encrypt: (...args) => inner.encrypt(...args),
      decrypt: (...args) => (opens++, inner.decrypt(...args)),
    });
    try {
      const { alice, bob } = ratchetPair();
      const opensOf = async (fn: () => Promise<unknown>) => {
        opens = 0;
        await fn();
        return opens;
      };
      expect(await opensOf(async () => bob.decrypt(await alice.encrypt(utf8('a0'))))).toBe(2);
      const late = await bob.encrypt(utf8('b-late')); // sent on Bob's chain before Alice replies
      for (let turn = 1; turn < 4; turn++) {
        expect(await opensOf(async () => alice.decrypt(await bob.encrypt(utf8(`b${turn}`))))).toBe(2);
        expect(await opensOf(async () => bob.decrypt(await alice.encrypt(utf8(`a${turn}`))))).toBe(2);
      }
      const burst = await Promise.all([1, 2, 3].map((i) => alice.encrypt(utf8(`burst${i}`))));
      for (const m of burst) expect(await opensOf(() => bob.decrypt(m))).toBe(2);
      // Alice has sent, so NHKr goes first; late's chain is the oldest of Alice's three receiving
      // chains: NHKr, HKr and the middle chain fail, the oldest opens the header, then the body.
      opens = 0;
      expect(text(await alice.decrypt(late))).toBe('b-late');
      expect(opens).toBe(5);
    } finally {
      setAesGcmBackend(inner);
    }
  });
});
