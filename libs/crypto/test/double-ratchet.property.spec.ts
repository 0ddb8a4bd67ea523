/**
 * Model-based properties of the Double Ratchet (fast-check, 1,000 runs each). A run is a random
 * script of sends, deliveries in any order, drops, replays, bit flips and pickle round trips
 * between Alice and Bob. A small model predicts the exact outcome of every delivery:
 *  - a message decrypts, once, to what was sent, when its sending chain is the receiver's next
 *    chain or one of the MAX_RECEIVING_CHAINS it remembers;
 *  - a message from a forgotten chain fails with UNKNOWN_HEADER_KEY;
 *  - a replay fails with DUPLICATE_MESSAGE (UNKNOWN_HEADER_KEY once its chain is forgotten);
 *  - a flipped bit fails with MALFORMED_INPUT (version), UNKNOWN_HEADER_KEY (header) or BAD_MAC
 *    (body), and the genuine message still decrypts afterwards;
 *  - restoring a session from its pickle at any step changes none of the above.
 */
import { inspect } from 'node:util';
import fc from 'fast-check';
import {
  CryptoError,
  CryptoErrorCode,
  DoubleRatchet,
  MAX_RECEIVING_CHAINS,
  randomBytes,
  ready,
} from '../src/index.js';
import { ratchetPair, text, utf8 } from './ratchet-kit.js';

beforeAll(() => ready());

const RUNS = 1000;
const HEADER_END = 1 + 68; // version byte, then the sealed header (40 + 12 nonce + 16 tag)

type Party = 'alice' | 'bob';
const other = (p: Party): Party => (p === 'alice' ? 'bob' : 'alice');

type Command =
  | { kind: 'send'; from: Party }
  | { kind: 'turn' }
  | { kind: 'deliver'; to: Party; pick: number }
  | { kind: 'drop'; to: Party; pick: number }
  | { kind: 'replay'; to: Party; pick: number }
  | { kind: 'flip'; to: Party; pick: number; bit: number }
  | { kind: 'restore'; who: Party; encrypted: boolean };

interface Sent {
  readonly wire: Uint8Array;
  readonly body: string;
  /** The sender's sending-chain number when it was sent (0, 1, 2, ... per DH turn). */
  readonly chain: number;
}

interface PartyModel {
  session: DoubleRatchet;
  /** Sending chain number, undefined while the responder cannot send. */
  sendChain: number | undefined;
  /** Chains received so far, in order. */
  received: number[];
  inFlight: Sent[];
  delivered: Sent[];
  got: string[];
}

const party: fc.Arbitrary<Party> = fc.constantFrom('alice', 'bob');

function commands(kinds: Command['kind'][]): fc.Arbitrary<Command[]> {
  const all: Record<Command['kind'], fc.Arbitrary<Command>> = {
    send: party.map((from) => ({ kind: 'send', from })),
    turn: fc.constant({ kind: 'turn' }),
    deliver: fc.record({ kind: fc.constant('deliver'), to: party, pick: fc.nat() }),
    drop: fc.record({ kind: fc.constant('drop'), to: party, pick: fc.nat() }),
    replay: fc.record({ kind: fc.constant('replay'), to: party, pick: fc.nat() }),
    flip: fc.record({ kind: fc.constant('flip'), to: party, pick: fc.nat(), bit: fc.nat() }),
    restore: fc.record({ kind: fc.constant('restore'), who: party, encrypted: fc.boolean() }),
  };
  // Sends and deliveries dominate; 'turn' (a message each way, delivered at once) makes DH turns
  // frequent enough that messages left in flight outlive the receiver's chain memory.
  const weighted = ['turn' as const, ...kinds].map((k) => ({
    arbitrary: all[k],
    weight: k === 'send' || k === 'deliver' ? 4 : k === 'turn' ? 2 : 1,
  }));
  return fc.array(fc.oneof(...weighted), { minLength: 5, maxLength: 40 });
}

function expectCode(err: unknown, code: CryptoErrorCode, context: string): void {
  if (!CryptoError.is(err, code)) {
    throw new Error(
      `${context}: expected CryptoError ${code}, got ${err === undefined ? 'success' : inspect(err)}`,
    );
  }
}

async function attempt(fn: () => Promise<Uint8Array>): Promise<{ plaintext?: Uint8Array; error?: unknown }> {
  try {
    return { plaintext: await fn() };
  } catch (error) {
    return { error };
  }
}

/** What the model says a delivery of `m` to `receiver` must do. */
function expectation(receiver: PartyModel, m: Sent): 'new-chain' | 'known-chain' | 'forgotten' {
  const last = receiver.received.at(-1);
  if (last === undefined ? m.chain === 0 : m.chain === last + 1) return 'new-chain';
  const remembered = receiver.received.slice(-MAX_RECEIVING_CHAINS);
  return remembered.includes(m.chain) ? 'known-chain' : 'forgotten';
}

async function runScript(script: Command[]): Promise<void> {
  const { alice, bob } = ratchetPair();
  const model: Record<Party, PartyModel> = {
    alice: { session: alice, sendChain: 0, received: [], inFlight: [], delivered: [], got: [] },
    bob: { session: bob, sendChain: undefined, received: [], inFlight: [], delivered: [], got: [] },
  };
  let counter = 0;

  for (const cmd of script) {
    switch (cmd.kind) {
      case 'send': {
        const sender = model[cmd.from];
        if (sender.sendChain === undefined) break; // the responder waits for a first message
        const body = `${cmd.from}#${counter++}`;
        const wire = await sender.session.encrypt(utf8(body));
        model[other(cmd.from)].inFlight.push({ wire, body, chain: sender.sendChain });
        break;
      }
      case 'turn': {
        for (const from of ['alice', 'bob'] as const) {
          const sender = model[from];
          if (sender.sendChain === undefined) continue;
          const body = `${from}#${counter++}`;
          const m = { wire: await sender.session.encrypt(utf8(body)), body, chain: sender.sendChain };
          await deliver(model[other(from)], m);
        }
        break;
      }
      case 'deliver':
      case 'drop': {
        const receiver = model[cmd.to];
        if (receiver.inFlight.length === 0) break;
        const [m] = receiver.inFlight.splice(cmd.pick % receiver.inFlight.length, 1);
        if (cmd.kind === 'drop') break;
        await deliver(receiver, m!);
        break;
      }
      case 'replay': {
        const receiver = model[cmd.to];
        if (receiver.delivered.length === 0) break;
        const m = receiver.delivered[cmd.pick % receiver.delivered.length]!;
        const { error } = await attempt(() => receiver.session.decrypt(m.wire));
        const known = receiver.received.slice(-MAX_RECEIVING_CHAINS).includes(m.chain);
        expectCode(
          error,
          known ? CryptoErrorCode.DuplicateMessage : CryptoErrorCode.UnknownHeaderKey,
          `replay of ${m.body}`,
        );
        break;
      }
      case 'flip': {
        const receiver = model[cmd.to];
        const candidates = receiver.inFlight.filter((m) => expectation(receiver, m) !== 'forgotten');
        if (candidates.length === 0) break;
        const m = candidates[cmd.pick % candidates.length]!;
        const bit = cmd.bit % (m.wire.length * 8);
        const bad = m.wire.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const { error } = await attempt(() => receiver.session.decrypt(bad));
        const byte = bit >> 3;
        const code =
          byte === 0
            ? CryptoErrorCode.MalformedInput
            : byte < HEADER_END
              ? CryptoErrorCode.UnknownHeaderKey
              : CryptoErrorCode.BadMac;
        expectCode(error, code, `bit ${bit} of ${m.body}`);
        break;
      }
      case 'restore': {
        const p = model[cmd.who];
        const key = cmd.encrypted ? randomBytes(32) : undefined;
        const pickle = await p.session.pickle(key);
        p.session = await DoubleRatchet.fromPickle(pickle, key);
        expect(await p.session.pickle()).toEqual(await p.session.pickle());
        break;
      }
    }
  }

  // Deliver whatever is left, then check: each delivered message arrived exactly once.
  for (const who of ['alice', 'bob'] as const) {
    const receiver = model[who];
    while (receiver.inFlight.length > 0) await deliver(receiver, receiver.inFlight.shift()!);
    expect(receiver.got.slice().sort()).toEqual(receiver.delivered.map((m) => m.body).sort());
    expect(new Set(receiver.got).size).toBe(receiver.got.length);
  }
}

async function deliver(receiver: PartyModel, m: Sent): Promise<void> {
  const outcome = expectation(receiver, m);
  const { plaintext, error } = await attempt(() => receiver.session.decrypt(m.wire));
  if (outcome === 'forgotten') {
    expectCode(error, CryptoErrorCode.UnknownHeaderKey, `late ${m.body} from a forgotten chain`);
    return;
  }
  if (error !== undefined) throw new Error(`${m.body} (${outcome}) failed: ${inspect(error)}`);
  expect(text(plaintext!)).toBe(m.body);
  receiver.got.push(m.body);
  receiver.delivered.push(m);
  if (outcome === 'new-chain') {
    receiver.received.push(m.chain);
    receiver.sendChain = (receiver.sendChain ?? -1) + 1;
  }
}

describe('DoubleRatchet properties', () => {
  it('any reordering and dropping decrypts exactly what was delivered, once each', async () => {
    await fc.assert(fc.asyncProperty(commands(['send', 'deliver', 'drop']), runScript), { numRuns: RUNS });
  });

  it('a replay is refused with its exact error and the session stays usable', async () => {
    await fc.assert(fc.asyncProperty(commands(['send', 'deliver', 'drop', 'replay']), runScript), {
      numRuns: RUNS,
    });
  });

  it('any single flipped bit is refused with its exact error and changes nothing', async () => {
    await fc.assert(fc.asyncProperty(commands(['send', 'deliver', 'flip']), runScript), { numRuns: RUNS });
  });

  it('pickling and restoring at any step changes nothing', async () => {
    await fc.assert(fc.asyncProperty(commands(['send', 'deliver', 'drop', 'replay', 'restore']), runScript), {
      numRuns: RUNS,
    });
  });
});
