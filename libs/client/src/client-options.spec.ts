import { describe, expect, it } from '@jest/globals';
import { systemClock } from '@usm/protocol';
import { CLIENT_DEFAULTS, type MessengerClientOptions, resolveOptions } from './client-options.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { MemoryStore } from './storage/memory-store.js';

const base: MessengerClientOptions = {
  relayUrl: 'http://127.0.0.1:1',
  relayIdentityKey: 'ab'.repeat(32),
  store: new MemoryStore(),
};

const codeOf = (run: () => unknown) => {
  try {
    run();
  } catch (err) {
    return ClientError.is(err) ? [err.code, err.message] : 'other';
  }
  return 'no error';
};

describe('resolveOptions', () => {
  it('fills in every default in one place; an option given as undefined takes its default', () => {
    const o = resolveOptions({ ...base, fetchIntervalMs: undefined, reconnect: false });
    expect(o).toMatchObject({ ...CLIENT_DEFAULTS, reconnect: false, clock: systemClock });
    expect(o.relayKey.bytes).toEqual(new Uint8Array(32).fill(0xab));
  });

  it('refuses what cannot work, saying what it expected', () => {
    expect(codeOf(() => resolveOptions(null as unknown as MessengerClientOptions))).toEqual([
      ClientErrorCode.InvalidArgument,
      'MessengerClient.open: expected options',
    ]);
    expect(codeOf(() => resolveOptions({ ...base, relayUrl: '' }))).toEqual([
      ClientErrorCode.InvalidArgument,
      'relayUrl: expected the relay URL',
    ]);
    expect(codeOf(() => resolveOptions({ ...base, relayIdentityKey: 'xyz' }))).toEqual([
      ClientErrorCode.InvalidArgument,
      'relayIdentityKey: expected an IdentityPublicKey or the hex of a 32-byte Ed25519 key',
    ]);
    expect(codeOf(() => resolveOptions({ ...base, oneTimePrekeyBatch: 101 }))).toEqual([
      ClientErrorCode.InvalidArgument,
      'oneTimePrekeyBatch: expected 1 to 100',
    ]);
  });
});
