import fc from 'fast-check';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { formatAddress } from '../address/address.js';
import { encodeEnvelope } from '../envelope/envelope.codec.js';
import { formatMessageId } from '../envelope/message-id.js';
import type { ClientEventName } from '../events.js';
import { CLIENT_EVENTS } from '../events.js';
import { address, envelope, messageId } from '../../test/arbitraries.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { FUZZ_RUNS } from '../../test/fuzz.js';
import { validateClientPayload, type ClientPayload } from './client-payloads.validation.js';

const M = ProtocolErrorCode.Malformed;
const T = ProtocolErrorCode.TooLarge;

const env = encodeEnvelope({
  id: new Uint8Array(16).fill(1),
  recipient: { identityKey: new Uint8Array(32).fill(2), deviceId: 1 },
  ciphertext: new Uint8Array(16),
});
const ADDRESS = formatAddress({ identityKey: new Uint8Array(32).fill(2), deviceId: 1 });
const ID = formatMessageId(new Uint8Array(16).fill(3));
const record = (id: number, size = 40) => ({ id, record: new Uint8Array(size) });

/** One valid payload per event. */
const VALID: { [E in ClientEventName]: ClientPayload<E> } = {
  'handshake:init': { message: new Uint8Array(174) },
  'handshake:complete': { message: new Uint8Array(98) },
  send: { envelopes: [env] },
  ack: { ids: [ID] },
  fetch: { cursor: 'abc', limit: 10 },
  'prekeys:publish': {
    signedPrekey: record(1),
    kemPrekey: record(2, 1300),
    oneTimePrekeys: [record(3), record(4)],
  },
  'prekeys:claim': { address: ADDRESS },
  'prekeys:count': {},
};

describe('validateClientPayload', () => {
  it.each(CLIENT_EVENTS)('accepts a valid %s payload and returns an equal fresh copy', (event) => {
    const payload = VALID[event];
    const out = validateClientPayload(event, payload);
    expect(out).toEqual(payload);
    expect(out).not.toBe(payload);
  });

  it('accepts Node Buffers, ArrayBuffers and null-prototype objects', () => {
    const buf = Buffer.from(env);
    expect(validateClientPayload('send', { envelopes: [buf] }).envelopes[0]).toBe(buf);
    const ab = env.slice().buffer;
    expect(validateClientPayload('send', { envelopes: [ab] }).envelopes[0]).toEqual(env);
    const bare = Object.assign(Object.create(null) as object, { ids: [ID] });
    expect(validateClientPayload('ack', bare)).toEqual({ ids: [ID] });
    expect(validateClientPayload('fetch', {})).toEqual({});
    expect(validateClientPayload('fetch', { cursor: undefined })).toEqual({});
  });

  it.each<[ClientEventName, unknown, ProtocolErrorCode, string]>([
    ['send', 'x', M, 'send: expected an object, got a string'],
    ['send', null, M, 'send: expected an object, got null'],
    ['send', [env], M, 'send: expected an object, got an array'],
    ['send', new Date(0), M, 'send: expected a plain object'],
    ['send', {}, M, 'send.envelopes: required'],
    ['send', { envelopes: [env], to: 'bob' }, M, 'send: unexpected field "to"'],
    ['send', JSON.parse('{"envelopes":[],"__proto__":{}}'), M, 'send: unexpected field "__proto__"'],
    ['send', { envelopes: env }, M, 'send.envelopes: expected an array, got a Uint8Array'],
    ['send', { envelopes: [] }, M, 'send.envelopes: 0 items, the minimum is 1'],
    ['send', { envelopes: Array(51).fill(env) }, T, 'send.envelopes: 51 items, the limit is 50'],
    ['send', { envelopes: [env, 'AQID'] }, M, 'send.envelopes[1]: expected bytes (Uint8Array), got a string'],
    [
      'send',
      { envelopes: [new Uint16Array(40)] },
      M,
      'send.envelopes[0]: expected bytes (Uint8Array), got an object',
    ],
    ['send', { envelopes: [new Uint8Array(72)] }, M, 'send.envelopes[0]: 72 bytes, the minimum is 73'],
    ['send', { envelopes: [new Uint8Array(65594)] }, T, 'send.envelopes[0]: 65594 bytes, the limit is 65593'],
    [
      'send',
      { envelopes: [new Uint8Array(65593), new Uint8Array(40000)] },
      T,
      'send.envelopes: 105593 bytes in all, the limit is 98304',
    ],
    ['ack', { ids: ['short'] }, M, 'ack.ids[0]: expected 22 characters, got 5'],
    ['ack', { ids: [ID, 7] }, M, 'ack.ids[1]: expected a string, got a number'],
    ['ack', { ids: [ID, ID] }, M, 'ack.ids[1]: repeats an earlier item'],
    ['ack', { ids: Array(501).fill(ID) }, T, 'ack.ids: 501 items, the limit is 500'],
    ['ack', { ids: ['x'.repeat(1_000_000)] }, T, 'ack.ids[0]: 1000000 characters, the limit is 22'],
    ['fetch', { limit: 0 }, M, 'fetch.limit: the minimum is 1'],
    ['fetch', { limit: 51 }, T, 'fetch.limit: the limit is 50'],
    ['fetch', { limit: 1.5 }, M, 'fetch.limit: expected an integer, got a number'],
    ['fetch', { limit: '5' }, M, 'fetch.limit: expected an integer, got a string'],
    ['fetch', { cursor: null }, M, 'fetch.cursor: expected a string, got null'],
    ['fetch', { cursor: '' }, M, 'fetch.cursor: 0 characters, the minimum is 1'],
    ['fetch', { cursor: 'a b' }, M, 'fetch.cursor: expected letters, digits and _ . ~ -'],
    ['fetch', { cursor: 'a'.repeat(129) }, T, 'fetch.cursor: 129 characters, the limit is 128'],
    [
      'prekeys:publish',
      {},
      M,
      'prekeys:publish: nothing to publish (give signedPrekey, kemPrekey or oneTimePrekeys)',
    ],
    [
      'prekeys:publish',
      { oneTimePrekeys: [] },
      M,
      'prekeys:publish: nothing to publish (give signedPrekey, kemPrekey or oneTimePrekeys)',
    ],
    [
      'prekeys:publish',
      { signedPrekey: { id: -1, record: new Uint8Array(9) } },
      M,
      'prekeys:publish.signedPrekey.id: the minimum is 0',
    ],
    [
      'prekeys:publish',
      { signedPrekey: { id: 2 ** 32, record: new Uint8Array(9) } },
      T,
      'prekeys:publish.signedPrekey.id: the limit is 4294967295',
    ],
    ['prekeys:publish', { kemPrekey: { id: 1 } }, M, 'prekeys:publish.kemPrekey.record: required'],
    [
      'prekeys:publish',
      { kemPrekey: record(1, 2049) },
      T,
      'prekeys:publish.kemPrekey.record: 2049 bytes, the limit is 2048',
    ],
    [
      'prekeys:publish',
      { kemPrekey: { ...record(1), extra: true } },
      M,
      'prekeys:publish.kemPrekey: unexpected field "extra"',
    ],
    [
      'prekeys:publish',
      { oneTimePrekeys: [record(1), record(2), record(1)] },
      M,
      'prekeys:publish.oneTimePrekeys[2]: repeats an earlier item',
    ],
    [
      'prekeys:publish',
      { oneTimePrekeys: Array.from({ length: 101 }, (_, i) => record(i)) },
      T,
      'prekeys:publish.oneTimePrekeys: 101 items, the limit is 100',
    ],
    [
      'prekeys:publish',
      { oneTimePrekeys: Array.from({ length: 50 }, (_, i) => record(i, 2000)) },
      T,
      'prekeys:publish: 100000 bytes in all, the limit is 98304',
    ],
    [
      'prekeys:claim',
      { address: 'bob' },
      M,
      "prekeys:claim.address: address: expected '<identity>.<device id>'",
    ],
    [
      'prekeys:claim',
      { address: `${ADDRESS.slice(0, -1)}0` },
      M,
      'prekeys:claim.address: address device id: expected decimal digits without sign or leading zero',
    ],
    [
      'prekeys:claim',
      { address: 'x'.repeat(55) },
      T,
      'prekeys:claim.address: 55 characters, the limit is 54',
    ],
    ['prekeys:count', { x: 1 }, M, 'prekeys:count: unexpected field "x"'],
    ['prekeys:count', undefined, M, 'prekeys:count: expected an object, got undefined'],
    [
      'handshake:init',
      { message: new Uint8Array(0) },
      M,
      'handshake:init.message: 0 bytes, the minimum is 1',
    ],
    [
      'handshake:init',
      { message: new Uint8Array(4097) },
      T,
      'handshake:init.message: 4097 bytes, the limit is 4096',
    ],
    [
      'handshake:complete',
      { message: [1, 2, 3] },
      M,
      'handshake:complete.message: expected bytes (Uint8Array), got an array',
    ],
  ])('%s refuses a bad payload, naming the field (%#)', (event, payload, code, message) => {
    expectProtocolError(() => validateClientPayload(event, payload), code, message);
  });

  it('quotes an invented field name, truncated, and refuses unknown events', () => {
    expectProtocolError(
      () => validateClientPayload('fetch', { ['k'.repeat(40)]: 1 }),
      M,
      `fetch: unexpected field "${'k'.repeat(32)}..."`,
    );
    expectProtocolError(
      () => validateClientPayload('toString' as ClientEventName, {}),
      M,
      'event: not a client event of this protocol',
    );
  });

  const events = fc.constantFrom(...CLIENT_EVENTS);

  it('fuzz: any value for any event is accepted or refused with MALFORMED / TOO_LARGE only', () => {
    fc.assert(
      fc.property(
        events,
        fc.anything({ withTypedArray: true, withNullPrototype: true, maxDepth: 3 }),
        (event, value) => {
          expectOnlyProtocolErrors(() => validateClientPayload(event, value));
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('fuzz: valid payloads with one field replaced, added or removed', () => {
    const validPayload = fc.oneof(
      fc.record({
        event: fc.constant('send' as const),
        payload: fc.record({
          envelopes: fc.array(envelope.map(encodeEnvelope), { minLength: 1, maxLength: 3 }),
        }),
      }),
      fc.record({
        event: fc.constant('ack' as const),
        payload: fc.record({
          ids: fc.uniqueArray(messageId.map(formatMessageId), { minLength: 1, maxLength: 3 }),
        }),
      }),
      fc.record({
        event: fc.constant('prekeys:claim' as const),
        payload: fc.record({ address: address.map(formatAddress) }),
      }),
      fc.record({
        event: fc.constant('fetch' as const),
        payload: fc.record(
          { cursor: fc.stringMatching(/^[a-z0-9]{1,8}$/), limit: fc.integer({ min: 1, max: 50 }) },
          { requiredKeys: [] },
        ),
      }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        validPayload,
        fc.constantFrom('envelopes', 'ids', 'address', 'cursor', 'limit', 'extra'),
        fc.option(fc.anything({ withTypedArray: true, maxDepth: 2 })),
        ({ event, payload }, field, replacement) => {
          const mutatedPayload: Record<string, unknown> = { ...payload };
          if (replacement === null) delete mutatedPayload[field];
          else mutatedPayload[field] = replacement;
          expect(validateClientPayload(event, payload)).toEqual(payload);
          if (expectOnlyProtocolErrors(() => validateClientPayload(event, mutatedPayload))) accepted++;
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});

/** Runs `run`; true when it returned, false when it threw an allowed ProtocolError; fails otherwise. */
function expectOnlyProtocolErrors(run: () => unknown): boolean {
  try {
    run();
    return true;
  } catch (err) {
    if (ProtocolError.is(err, M) || ProtocolError.is(err, T)) return false;
    throw new Error(`validator threw ${String(err)}`, { cause: err });
  }
}
