import { beforeAll, describe, expect, it } from '@jest/globals';
import { ready } from '@usm/crypto';
import { addressOf, formatAddress } from '@usm/protocol';
import { IDENTITY_KEY } from '../client-records.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { FakeTime } from '../fake-time.test.js';
import { MemoryStore } from '../storage/memory-store.js';
import { loadDeviceKeys, safetyNumberOf } from './device-keys.js';

beforeAll(async () => {
  await ready();
});

describe('device keys', () => {
  it('creates the identity and prekeys once, then loads the same ones', async () => {
    const store = new MemoryStore();
    const time = new FakeTime();
    const first = await loadDeviceKeys(store, time);
    const again = await loadDeviceKeys(store, time);
    expect(again.identity.publicKey.equals(first.identity.publicKey)).toBe(true);
    expect(again.prekeys.signedPrekey.id).toBe(first.prekeys.signedPrekey.id);
    expect(first.prekeys.signedPrekeyCreatedAt).toBe(time.now());
  });

  it('refuses a stored identity that does not load (CORRUPT_STORE)', async () => {
    const store = new MemoryStore();
    await loadDeviceKeys(store, new FakeTime());
    await store.write({ put: [[IDENTITY_KEY, Uint8Array.of(1, 2, 3)]] });
    const err = await loadDeviceKeys(store, new FakeTime()).catch((e: unknown) => e);
    expect(ClientError.is(err, ClientErrorCode.CorruptStore)).toBe(true);
  });

  it('gives both sides the same 60-digit safety number', async () => {
    const a = await loadDeviceKeys(new MemoryStore(), new FakeTime());
    const b = await loadDeviceKeys(new MemoryStore(), new FakeTime());
    const addr = (k: typeof a) => formatAddress(addressOf(k.identity.publicKey));
    const ab = safetyNumberOf(a.identity, addr(a), addr(b));
    expect(ab).toMatch(/^\d{60}$/);
    expect(safetyNumberOf(b.identity, addr(b), addr(a))).toBe(ab);
  });
});
