/**
 * Tampering and replay at the client's decrypt path (the protocol's Session, as MessengerClient
 * uses it): every bit of an envelope flipped, messages in random orders, the MAX_SKIP boundary,
 * and no (key, nonce) pair used twice by AES-GCM across a long conversation with DH turns and
 * restarts from pickles. The relay-side cases (replays through the relay, bundle claims,
 * handshake mutations) are in relay-attacks.spec.ts.
 *
 * Already proven at the Double Ratchet level (cited in the report): double-ratchet.spec.ts
 * ("refuses a jump past MAX_SKIP...", "names a replay DUPLICATE_MESSAGE..."), and
 * double-ratchet.property.spec.ts ("any single flipped bit is refused...").
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { type AesGcmBackend, MAX_SKIP, aesGcm, ready, setAesGcmBackend } from '@usm/crypto';
import {
  ProtocolError,
  ProtocolErrorCode,
  Session,
  addressOf,
  decodeEnvelope,
  encodeEnvelope,
  generateMessageId,
  PayloadKind,
  openApplicationPayload,
  sealApplicationPayload,
} from '@usm/protocol';
import { utf8 } from '../../libs/protocol/src/session/session-kit.test.js';
import { SIZES } from './parameters.js';
import { recordCase } from './report.js';
import { establishedPair, seeded, shuffle } from './support/sessions.js';

beforeAll(async () => {
  await ready();
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const codeOf = (err: unknown) =>
  err instanceof ProtocolError ? err.code : `not a ProtocolError: ${String(err)}`;

function textPayload(text: string, sequence = 0): Uint8Array {
  return sealApplicationPayload({ kind: PayloadKind.Text, sequence, sentAt: 1_700_000_000_000, text });
}

describe('tampering at the client decrypt path', () => {
  it('every bit of an envelope flipped: refused (or not Bob’s), the session unchanged, the genuine message decrypts', async () => {
    const { bob, toBob, toAlice } = await establishedPair();
    const text = 'x'.repeat(SIZES.bitFlipPlaintextBytes);
    // As the client does: the envelope's message id is bound into the session encryption.
    const id = generateMessageId();
    const envelope = encodeEnvelope({
      id,
      recipient: addressOf(bob.publicKey),
      ciphertext: await toBob.encrypt(textPayload(text), id),
    });
    const genuine = decodeEnvelope(envelope);
    const before = await toAlice.pickle();
    const codes = new Map<string, number>();
    const count = (k: string) => codes.set(k, (codes.get(k) ?? 0) + 1);
    let notForBob = 0;
    let idBits = 0;
    let accepted = 0;
    let stateChanged = 0;
    const bits = envelope.length * 8;
    for (let bit = 0; bit < bits; bit++) {
      const flipped = envelope.slice();
      flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
      let decoded;
      try {
        decoded = decodeEnvelope(flipped);
      } catch (err) {
        count(`envelope ${codeOf(err)}`);
        continue;
      }
      if (
        !same(decoded.recipient.identityKey, genuine.recipient.identityKey) ||
        decoded.recipient.deviceId !== genuine.recipient.deviceId
      ) {
        notForBob++; // routed to another mailbox, which holds no session with Alice
        continue;
      }
      if (same(decoded.ciphertext, genuine.ciphertext)) idBits++; // only the message id changed
      try {
        await toAlice.decrypt(decoded.ciphertext, bob.prekeys, decoded.id);
        accepted++;
      } catch (err) {
        count(`session ${codeOf(err)}`);
      }
      if (!same(await toAlice.pickle(), before)) stateChanged++;
    }
    const { plaintext } = await toAlice.decrypt(genuine.ciphertext, bob.prekeys, genuine.id);
    const genuineOk = openApplicationPayload(plaintext).kind === PayloadKind.Text;
    const rejected = [...codes.values()].reduce((a, b) => a + b, 0);
    recordCase({
      id: 'T1',
      title:
        'Every bit of an envelope flipped: refused with state unchanged, the next genuine message decrypts',
      figures: {
        'envelope bytes': envelope.length,
        variants: bits,
        refused: rejected,
        ...Object.fromEntries(codes),
        'recipient changed (another mailbox)': notForBob,
        'message-id bits (refused: the id is bound into the encryption)': idBits,
        accepted,
        'state changed': stateChanged,
        'genuine decrypts after': String(genuineOk),
      },
      outcome:
        accepted === 0 && stateChanged === 0 && genuineOk && rejected + notForBob === bits ? 'pass' : 'fail',
    });
    expect(accepted).toBe(0);
    expect(stateChanged).toBe(0);
    expect(genuineOk).toBe(true);
    // The 16-byte message id is bound into the session encryption as associated data, so a copy
    // whose id was rewritten fails authentication (BAD_MAC) and the genuine copy still decrypts.
    expect(idBits).toBe(128);
    expect(codes.get(`session ${ProtocolErrorCode.BadMac}`)).toBeGreaterThanOrEqual(128);
    expect(notForBob).toBe(32 * 8 + 4 * 8 - 1); // every recipient bit, except the device-id flip to 0 (refused)
    expect(bits).toBeGreaterThan(2000);
  });

  it(`${SIZES.permutationMessages} messages in ${SIZES.permutationSeeds} random orders: each decrypts exactly once, a second copy is a REPLAY`, async () => {
    const perSeed: string[] = [];
    let decrypted = 0;
    let replaysRefused = 0;
    let wrong = 0;
    for (let seed = 1; seed <= SIZES.permutationSeeds; seed++) {
      const { bob, toBob, toAlice } = await establishedPair();
      const sent: { n: number; wire: Uint8Array }[] = [];
      for (let n = 0; n < SIZES.permutationMessages; n++)
        sent.push({ n, wire: await toBob.encrypt(utf8(`m${n}`)) });
      const random = seeded(seed);
      const seen = new Set<number>();
      for (const { n, wire } of shuffle(sent, random)) {
        const { plaintext } = await toAlice.decrypt(wire, bob.prekeys);
        if (Buffer.from(plaintext).toString() !== `m${n}` || seen.has(n)) wrong++;
        seen.add(n);
        decrypted++;
      }
      // Redeliver 50 of them in another order: each is refused as a replay.
      for (const { wire } of shuffle(sent, random).slice(0, 50)) {
        try {
          await toAlice.decrypt(wire, bob.prekeys);
        } catch (err) {
          if (ProtocolError.is(err, ProtocolErrorCode.Replay)) replaysRefused++;
        }
      }
      perSeed.push(`${seed}:${seen.size}`);
    }
    const expected = SIZES.permutationMessages * SIZES.permutationSeeds;
    recordCase({
      id: 'T3',
      title:
        'Messages delivered in random permutations all decrypt exactly once; redeliveries are refused (REPLAY)',
      figures: {
        messages: SIZES.permutationMessages,
        seeds: SIZES.permutationSeeds,
        decrypted,
        'wrong or repeated': wrong,
        'redeliveries refused': replaysRefused,
      },
      outcome:
        decrypted === expected && wrong === 0 && replaysRefused === 50 * SIZES.permutationSeeds
          ? 'pass'
          : 'fail',
    });
    expect({ decrypted, wrong, replaysRefused }).toEqual({
      decrypted: expected,
      wrong: 0,
      replaysRefused: 50 * SIZES.permutationSeeds,
    });
  });

  it('the MAX_SKIP boundary: exactly MAX_SKIP ahead decrypts, MAX_SKIP + 1 ahead is refused and changes nothing', async () => {
    const { bob, toBob, toAlice } = await establishedPair();
    const sent: Uint8Array[] = [];
    for (let n = 0; n <= MAX_SKIP + 1; n++) sent.push(await toBob.encrypt(utf8(`s${n}`)));
    const before = await toAlice.pickle();
    let refusal: unknown;
    try {
      await toAlice.decrypt(sent[MAX_SKIP + 1]!, bob.prekeys);
    } catch (err) {
      refusal = err;
    }
    const unchanged = same(await toAlice.pickle(), before);
    const atLimit = Buffer.from((await toAlice.decrypt(sent[MAX_SKIP]!, bob.prekeys)).plaintext).toString();
    const afterLimit = Buffer.from(
      (await toAlice.decrypt(sent[MAX_SKIP + 1]!, bob.prekeys)).plaintext,
    ).toString();
    const skipped = Buffer.from((await toAlice.decrypt(sent[0]!, bob.prekeys)).plaintext).toString();
    const code = codeOf(refusal);
    recordCase({
      id: 'T4',
      title:
        'MAX_SKIP boundary through the session: MAX_SKIP ahead decrypts, MAX_SKIP + 1 ahead refused with state unchanged',
      figures: {
        MAX_SKIP,
        'refusal at MAX_SKIP + 1': code,
        'state unchanged': String(unchanged),
        'at MAX_SKIP': atLimit === `s${MAX_SKIP}` ? 'decrypted' : 'FAILED',
        'skipped key used later': skipped === 's0' ? 'yes' : 'no',
      },
      outcome:
        code === ProtocolErrorCode.Malformed || code === ProtocolErrorCode.TooLarge
          ? unchanged && atLimit === `s${MAX_SKIP}`
            ? 'pass'
            : 'fail'
          : 'fail',
    });
    expect(refusal).toBeInstanceOf(ProtocolError);
    expect((refusal as ProtocolError).message).toBe(
      `session: ratchet: message ${MAX_SKIP + 1} is ${MAX_SKIP + 1} ahead of the next expected (0); at most ${MAX_SKIP} may be skipped`,
    );
    expect(unchanged).toBe(true);
    expect([atLimit, afterLimit, skipped]).toEqual([`s${MAX_SKIP}`, `s${MAX_SKIP + 1}`, 's0']);
  });
});

describe('AES-GCM (key, nonce) uniqueness', () => {
  it(`no (key, nonce) pair repeats across ${SIZES.nonceMessages} messages, ${SIZES.nonceDhTurns} DH turns and ${SIZES.nonceRestarts} restarts`, async () => {
    const original = aesGcm();
    const pairs = new Set<string>();
    let encryptCalls = 0;
    let decryptCalls = 0;
    // Only hashes of (key, iv) are kept: never a key or a nonce.
    const spy: AesGcmBackend = {
      name: `spy(${original.name})`,
      encrypt(key, iv, plaintext, aad) {
        encryptCalls++;
        pairs.add(createHash('sha256').update(key).update(iv).digest('hex'));
        return original.encrypt(key, iv, plaintext, aad);
      },
      decrypt(key, iv, sealed, aad) {
        decryptCalls++;
        return original.decrypt(key, iv, sealed, aad);
      },
    };
    setAesGcmBackend(spy);
    let restarts = 0;
    let turns = 0;
    let delivered = 0;
    try {
      const pair = await establishedPair();
      let { toBob, toAlice } = pair;
      const storageKey = new Uint8Array(32).fill(7);
      const segments = SIZES.nonceDhTurns + 1;
      const perSegment = Math.ceil(SIZES.nonceMessages / segments);
      const restartAt = new Set(
        Array.from({ length: SIZES.nonceRestarts }, (_, i) =>
          Math.floor(((i + 1) * segments) / (SIZES.nonceRestarts + 1)),
        ),
      );
      let sent = 0;
      for (let segment = 0; segment < segments && sent < SIZES.nonceMessages; segment++) {
        // Even segments Alice -> Bob, odd ones Bob -> Alice: each change of direction is a DH turn.
        const [from, to, prekeys] =
          segment % 2 === 0 ? [toBob, toAlice, pair.bob.prekeys] : [toAlice, toBob, pair.alice.prekeys];
        if (segment > 0) turns++;
        for (let i = 0; i < perSegment && sent < SIZES.nonceMessages; i++, sent++) {
          const { plaintext } = await to.decrypt(await from.encrypt(utf8(`n${sent}`)), prekeys);
          if (plaintext.length > 0) delivered++;
        }
        if (restartAt.has(segment)) {
          // A restart: both clients reload their sessions from encrypted pickles.
          toBob = await Session.fromPickle(await toBob.pickle(storageKey), storageKey);
          toAlice = await Session.fromPickle(await toAlice.pickle(storageKey), storageKey);
          restarts++;
        }
      }
    } finally {
      setAesGcmBackend(original);
    }
    const repeated = encryptCalls - pairs.size;
    recordCase({
      id: 'T5',
      title:
        'No repeated AES-GCM (key, nonce) pair across a long conversation with DH turns and restarts (every AES-GCM call spied)',
      figures: {
        messages: delivered,
        'DH turns': turns,
        restarts,
        'AES-GCM encrypt calls': encryptCalls,
        'AES-GCM decrypt calls': decryptCalls,
        'repeated (key, nonce) pairs': repeated,
      },
      outcome:
        repeated === 0 &&
        delivered === SIZES.nonceMessages &&
        turns === SIZES.nonceDhTurns &&
        restarts === SIZES.nonceRestarts
          ? 'pass'
          : 'fail',
    });
    expect({ delivered, turns, restarts, repeated }).toEqual({
      delivered: SIZES.nonceMessages,
      turns: SIZES.nonceDhTurns,
      restarts: SIZES.nonceRestarts,
      repeated: 0,
    });
    // Every message: a sealed header and a body, at least.
    expect(encryptCalls).toBeGreaterThanOrEqual(2 * SIZES.nonceMessages);
  });
});
