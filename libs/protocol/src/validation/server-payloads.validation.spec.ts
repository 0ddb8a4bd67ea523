import fc from 'fast-check';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { formatAddress } from '../address/address.js';
import { encodeEnvelope } from '../envelope/envelope.codec.js';
import { formatMessageId } from '../envelope/message-id.js';
import { CLIENT_EVENTS } from '../events.js';
import { expectProtocolError } from '../../test/expect-error.js';
import { FUZZ_RUNS } from '../../test/fuzz.js';
import { validateReply, validateServerPush } from './server-payloads.validation.js';

const M = ProtocolErrorCode.Malformed;
const T = ProtocolErrorCode.TooLarge;

const env = encodeEnvelope({
  id: new Uint8Array(16).fill(1),
  recipient: { identityKey: new Uint8Array(32).fill(2), deviceId: 1 },
  ciphertext: new Uint8Array(16),
});
const ADDRESS = formatAddress({ identityKey: new Uint8Array(32).fill(2), deviceId: 1 });
const ID = formatMessageId(new Uint8Array(16).fill(3));
const item = { envelope: env, sender: ADDRESS, receivedAt: 1_700_000_000_000, cursor: '42' };

describe('validateReply', () => {
  it('accepts ok replies of every event', () => {
    expect(validateReply('send', { status: 'ok', results: [{ status: 'stored', id: ID }] })).toEqual({
      status: 'ok',
      results: [{ status: 'stored', id: ID }],
    });
    const rejected = { status: 'rejected', code: 'TOO_LARGE', message: 'envelope: too big' };
    expect(
      validateReply('send', { status: 'ok', results: [{ status: 'duplicate', id: ID }, rejected] }),
    ).toEqual({
      status: 'ok',
      results: [{ status: 'duplicate', id: ID }, rejected],
    });
    expect(validateReply('ack', { status: 'ok', deleted: 3 })).toEqual({ status: 'ok', deleted: 3 });
    expect(validateReply('fetch', { status: 'ok', mail: [item], cursor: null })).toEqual({
      status: 'ok',
      mail: [item],
      cursor: null,
    });
    const bundle = {
      address: ADDRESS,
      signedPrekey: { id: 1, record: new Uint8Array(100) },
      kemPrekey: { id: 2, record: new Uint8Array(1300) },
      oneTimePrekey: null,
    };
    expect(validateReply('prekeys:claim', { status: 'ok', bundle })).toEqual({ status: 'ok', bundle });
    expect(
      validateReply('prekeys:count', {
        status: 'ok',
        oneTimePrekeys: 0,
        hasSignedPrekey: true,
        hasKemPrekey: false,
      }),
    ).toEqual({ status: 'ok', oneTimePrekeys: 0, hasSignedPrekey: true, hasKemPrekey: false });
    expect(validateReply('handshake:complete', { status: 'ok', address: ADDRESS })).toEqual({
      status: 'ok',
      address: ADDRESS,
    });
  });

  it('turns ArrayBuffers (socket.io-client in browsers) into Uint8Arrays', () => {
    const reply = validateReply('handshake:init', { status: 'ok', message: Uint8Array.of(1, 2, 3).buffer });
    expect(reply.status === 'ok' && reply.message).toEqual(Uint8Array.of(1, 2, 3));
    const push = validateServerPush('mail', { mail: [{ ...item, envelope: env.slice().buffer }] });
    expect(push.mail[0]!.envelope).toBeInstanceOf(Uint8Array);
    expect(push.mail[0]!.envelope).toEqual(env);
  });

  it('accepts the uniform error shape, with and without retryAfterMs', () => {
    const err = { status: 'error', code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 1500 };
    expect(validateReply('send', err)).toEqual(err);
    expect(
      validateReply('fetch', { status: 'error', code: 'UNAUTHENTICATED', message: 'handshake first' }),
    ).toEqual({
      status: 'error',
      code: 'UNAUTHENTICATED',
      message: 'handshake first',
    });
  });

  it.each<[string, unknown, ProtocolErrorCode, string]>([
    ['ack', 'ok', M, "ack reply.status: expected one of 'ok', 'error'"],
    ['ack', { status: 'fine' }, M, "ack reply.status: expected one of 'ok', 'error'"],
    ['ack', { status: 'ok' }, M, 'ack reply.deleted: required'],
    ['ack', { status: 'ok', deleted: 1, extra: 1 }, M, 'ack reply: unexpected field "extra"'],
    [
      'ack',
      { status: 'error', code: 'NOPE', message: '' },
      M,
      'ack reply.code: expected a ProtocolErrorCode',
    ],
    [
      'ack',
      { status: 'error', code: 'INTERNAL', message: 'x'.repeat(513) },
      T,
      'ack reply.message: 513 characters, the limit is 512',
    ],
    [
      'ack',
      { status: 'error', code: 'INTERNAL', message: '', retryAfterMs: 3_600_001 },
      T,
      'ack reply.retryAfterMs: the limit is 3600000',
    ],
    [
      'send',
      { status: 'ok', results: [{ status: 'lost' }] },
      M,
      "send reply.results[0].status: expected one of 'stored', 'duplicate', 'rejected'",
    ],
    [
      'send',
      { status: 'ok', results: [{ status: 'stored', id: 'x' }] },
      M,
      'send reply.results[0].id: expected 22 characters, got 1',
    ],
    ['fetch', { status: 'ok', mail: [item] }, M, 'fetch reply.cursor: required'],
    [
      'fetch',
      { status: 'ok', mail: [{ ...item, receivedAt: -1 }], cursor: null },
      M,
      'fetch reply.mail[0].receivedAt: the minimum is 0',
    ],
    [
      'fetch',
      { status: 'ok', mail: [{ ...item, sender: 'me' }], cursor: null },
      M,
      "fetch reply.mail[0].sender: address: expected '<identity>.<device id>'",
    ],
    [
      'fetch',
      { status: 'ok', mail: Array(51).fill(item), cursor: null },
      T,
      'fetch reply.mail: 51 items, the limit is 50',
    ],
    [
      'fetch',
      {
        status: 'ok',
        mail: [
          { ...item, envelope: new Uint8Array(65593) },
          { ...item, envelope: new Uint8Array(40000) },
        ],
        cursor: null,
      },
      T,
      'fetch reply.mail: 105593 bytes in all, the limit is 98304',
    ],
  ])('%s: refuses a bad reply, naming the field (%#)', (event, value, code, message) => {
    expectProtocolError(() => validateReply(event as 'ack', value), code, message);
  });

  it.each<[string, unknown, ProtocolErrorCode, string]>([
    ['mail', { mail: [] }, M, 'mail.mail: 0 items, the minimum is 1'],
    [
      'mail',
      { mail: [{ ...item, envelope: 'AAAA' }] },
      M,
      'mail.mail[0].envelope: expected bytes (Uint8Array), got a string',
    ],
    ['mail', { mail: [{ ...item, cursor: '007' }] }, M, 'mail.mail[0].cursor: expected a decimal integer'],
    ['mail', { mail: [{ ...item, cursor: '-1' }] }, M, 'mail.mail[0].cursor: expected a decimal integer'],
    ['mail', { mail: [{ ...item, cursor: 7 }] }, M, 'mail.mail[0].cursor: expected a string, got a number'],
    ['mail:sync', {}, M, 'mail:sync.reason: required'],
    ['mail:sync', { reason: 'later' }, M, "mail:sync.reason: expected one of 'backlog', 'notices'"],
    ['prekeys:low', { remaining: 2 }, M, 'prekeys:low.threshold: required'],
    [
      'prekeys:low',
      { remaining: 2, threshold: 10.5 },
      M,
      'prekeys:low.threshold: expected an integer, got a number',
    ],
    ['ping', {}, M, 'event: not a server event of this protocol'],
  ])('push %s: refuses a bad payload (%#)', (event, value, code, message) => {
    expectProtocolError(() => validateServerPush(event as 'mail', value), code, message);
  });

  it('fuzz: any reply for any event, and any push, only ever throws MALFORMED / TOO_LARGE', () => {
    const replyLike = fc.oneof(
      fc.anything({ withTypedArray: true, maxDepth: 3 }),
      fc.record(
        {
          status: fc.constantFrom('ok', 'error'),
          code: fc.string(),
          message: fc.string(),
          deleted: fc.anything(),
        },
        { requiredKeys: ['status'] },
      ),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...CLIENT_EVENTS),
        fc.constantFrom('mail' as const, 'mail:sync' as const, 'prekeys:low' as const),
        replyLike,
        (event, push, value) => {
          for (const run of [() => validateReply(event, value), () => validateServerPush(push, value)]) {
            try {
              run();
            } catch (err) {
              if (!ProtocolError.is(err, M) && !ProtocolError.is(err, T))
                throw new Error(`threw ${String(err)}`, { cause: err });
            }
          }
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });
});
