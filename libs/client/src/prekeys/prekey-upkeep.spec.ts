import { beforeAll, describe, expect, it } from '@jest/globals';
import { generateIdentityKeyPair, ready } from '@usm/crypto';
import {
  LOW_PREKEY_THRESHOLD,
  PrekeyStore,
  type PrekeysCountResult,
  type PrekeysPublishRequest,
} from '@usm/protocol';
import { PREKEYS_KEY } from '../client-records.js';
import type { RelayConnection } from '../connection.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { fakeRuntime } from '../fake-time.test.js';
import { MemoryStore } from '../storage/memory-store.js';
import { PrekeyUpkeep } from './prekey-upkeep.js';

beforeAll(async () => {
  await ready();
});

const WEEK = 7 * 24 * 60 * 60 * 1000;

function setup(count: PrekeysCountResult, batch = 50) {
  const rt = fakeRuntime();
  const store = new MemoryStore();
  const prekeys = PrekeyStore.create(generateIdentityKeyPair(), { clock: rt.clock });
  const published: PrekeysPublishRequest[] = [];
  const connection = {
    connected: true,
    failWith: undefined as ClientError | undefined,
    request: (async (event: string, payload: PrekeysPublishRequest) => {
      if (connection.failWith) throw connection.failWith;
      if (event === 'prekeys:count') return count;
      if (event === 'prekeys:publish') {
        published.push(payload);
        return { oneTimePrekeys: 0 };
      }
      throw new Error(`unexpected ${event}`);
    }) as unknown as RelayConnection['request'],
  };
  const upkeep = new PrekeyUpkeep({
    ...rt,
    prekeys,
    store,
    connection,
    oneTimePrekeyBatch: batch,
    signedPrekeyMaxAgeMs: WEEK,
  });
  const stored = async () => PrekeyStore.fromPickle((await store.get(PREKEYS_KEY))!, prekeys.identity);
  return { rt, store, prekeys, published, connection, upkeep, stored };
}

const stocked = { oneTimePrekeys: 100, hasSignedPrekey: true, hasKemPrekey: true };

describe('PrekeyUpkeep', () => {
  it('does nothing when the relay is stocked and the prekeys are fresh', async () => {
    const { upkeep, published, store } = setup(stocked);
    await upkeep.sync();
    expect(published).toEqual([]);
    expect(await store.get(PREKEYS_KEY)).toBeUndefined();
  });

  it('publishes the signed and KEM prekeys when the relay has none', async () => {
    const { upkeep, published, prekeys } = setup({ ...stocked, hasKemPrekey: false });
    await upkeep.sync();
    expect(published).toHaveLength(1);
    expect(published[0]!.signedPrekey?.id).toBe(prekeys.signedPrekey.id);
    expect(published[0]!.kemPrekey?.id).toBe(prekeys.lastResortKemPrekey.id);
  });

  it('rotates prekeys older than signedPrekeyMaxAgeMs, persists them, then publishes them', async () => {
    const { rt, upkeep, published, prekeys, stored } = setup(stocked);
    const before = prekeys.signedPrekey.id;
    await rt.time.advance(WEEK + 1);
    await upkeep.sync();
    expect(prekeys.signedPrekey.id).not.toBe(before);
    expect((await stored()).signedPrekey.id).toBe(prekeys.signedPrekey.id);
    expect(published[0]!.signedPrekey?.id).toBe(prekeys.signedPrekey.id);
  });

  it(`tops up below LOW_PREKEY_THRESHOLD (${LOW_PREKEY_THRESHOLD}): persisted before published, 50 per publish`, async () => {
    const { upkeep, published, stored } = setup(
      { ...stocked, oneTimePrekeys: LOW_PREKEY_THRESHOLD - 1 },
      100,
    );
    await upkeep.sync();
    expect(published.map((p) => p.oneTimePrekeys?.length)).toEqual([50, 50]);
    expect((await stored()).oneTimePrekeyCount).toBe(100);
  });

  it('runs one top-up at a time, and reports what fails unless it is for want of a connection', async () => {
    const { rt, upkeep, published, connection } = setup(stocked);
    await Promise.all([upkeep.topUp(), upkeep.topUp()]);
    expect(published).toHaveLength(1);
    connection.failWith = new ClientError(ClientErrorCode.NotConnected, 'offline');
    await upkeep.topUp();
    expect(rt.reported).toEqual([]);
    connection.failWith = new ClientError(ClientErrorCode.RelayError, 'refused');
    await upkeep.topUp();
    expect(rt.reported.map((e) => (e as ClientError).code)).toEqual([ClientErrorCode.RelayError]);
  });

  it('writeWith puts the caller’s entries and the prekey store in one batch', async () => {
    const { store, upkeep, prekeys, stored } = setup(stocked);
    prekeys.generateOneTimePrekeys(3);
    await upkeep.writeWith([['session/x', Uint8Array.of(1)]]);
    expect(await store.get('session/x')).toEqual(Uint8Array.of(1));
    expect((await stored()).oneTimePrekeyCount).toBe(3);
  });
});
