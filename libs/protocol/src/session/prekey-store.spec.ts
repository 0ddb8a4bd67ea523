/**
 * The owner's prekey store: generation, signatures, rotation, one-time use, limits and pickles.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { generateIdentityKeyPair, randomBytes, ready } from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { MAX_ONE_TIME_PREKEYS_PER_BATCH, MAX_SIGNED_PREKEYS_KEPT } from './limits.js';
import { PrekeyStore } from './prekey-store.js';
import { encodePrekeyBundle, verifyBundleSignatures } from './prekeys.js';
import { expectProtocolError } from './session-kit.test.js';

beforeAll(async () => {
  await ready();
});

function clockAt(start: number) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('PrekeyStore', () => {
  it('publishes signed prekeys that verify, one-time prekeys with distinct ids', () => {
    const identity = generateIdentityKeyPair();
    const store = PrekeyStore.create(identity);
    const fresh = store.generateOneTimePrekeys(MAX_ONE_TIME_PREKEYS_PER_BATCH);
    const kemFresh = store.generateOneTimeKemPrekeys(3);
    const pub = store.publication();
    expect(pub.oneTimePrekeys.map((p) => p.id)).toEqual(fresh.map((p) => p.id));
    expect(new Set(fresh.map((p) => p.id)).size).toBe(MAX_ONE_TIME_PREKEYS_PER_BATCH);
    expect(pub.oneTimeKemPrekeys.map((p) => p.lastResort)).toEqual([false, false, false]);
    expect(pub.lastResortKemPrekey.lastResort).toBe(true);
    for (const kem of [pub.lastResortKemPrekey, ...kemFresh]) {
      expect(() =>
        verifyBundleSignatures({
          identityKey: pub.identityKey,
          signedPrekey: pub.signedPrekey,
          kemPrekey: kem,
        }),
      ).not.toThrow();
    }
    // Its KEM ids are one id space: a one-time id never equals the last-resort id.
    expect(kemFresh.map((p) => p.id)).not.toContain(pub.lastResortKemPrekey.id);
  });

  it('rotates signed and last-resort prekeys, keeping the newest MAX_SIGNED_PREKEYS_KEPT usable', () => {
    const clock = clockAt(1_000);
    const store = PrekeyStore.create(generateIdentityKeyPair(), { clock });
    const ids = [store.signedPrekey.id];
    const kemIds = [store.lastResortKemPrekey.id];
    for (let i = 0; i < MAX_SIGNED_PREKEYS_KEPT; i++) {
      clock.t += 7 * 24 * 3600_000;
      ids.push(store.rotateSignedPrekey().id);
      kemIds.push(store.rotateLastResortKemPrekey().id);
    }
    expect(store.signedPrekey.id).toBe(ids.at(-1));
    expect(store.signedPrekeyCreatedAt).toBe(clock.t);
    expect(ids.map((id) => store.signedPrekeyKeyPair(id) !== undefined)).toEqual([false, true, true, true]);
    expect(kemIds.map((id) => store.kemPrekeyKeyPair(id, true) !== undefined)).toEqual([
      false,
      true,
      true,
      true,
    ]);
    // A kept last-resort id is not a one-time KEM prekey.
    expect(store.kemPrekeyKeyPair(kemIds.at(-1)!, false)).toBeUndefined();
  });

  it('deletes one-time prekeys on consumption, once', () => {
    const store = PrekeyStore.create(generateIdentityKeyPair());
    const [a, b] = store.generateOneTimePrekeys(2);
    const [k] = store.generateOneTimeKemPrekeys(1);
    expect(store.consumeOneTimePrekeys(a!.id, k!.id)).toBe(true);
    expect(store.oneTimePrekeyKeyPair(a!.id)).toBeUndefined();
    expect(store.kemPrekeyKeyPair(k!.id, false)).toBeUndefined();
    // Used already: refused, and the other key named is not consumed either.
    expect(store.consumeOneTimePrekeys(b!.id, k!.id)).toBe(false);
    expect(store.oneTimePrekeyKeyPair(b!.id)).toBeDefined();
    expect(store.consumeOneTimePrekeys(a!.id, undefined)).toBe(false);
    expect(store.consumeOneTimePrekeys(undefined, undefined)).toBe(true);
  });

  it('refuses batches out of range and stock past its limit', async () => {
    const store = PrekeyStore.create(generateIdentityKeyPair());
    await expectProtocolError(() => store.generateOneTimePrekeys(0), ProtocolErrorCode.Malformed);
    await expectProtocolError(
      () => store.generateOneTimePrekeys(MAX_ONE_TIME_PREKEYS_PER_BATCH + 1),
      ProtocolErrorCode.Malformed,
    );
    for (let i = 0; i < 10; i++) store.generateOneTimePrekeys(100);
    await expectProtocolError(
      () => store.generateOneTimePrekeys(1),
      ProtocolErrorCode.TooLarge,
      'one-time prekeys: 1000 held, 1 more would exceed the limit of 1000: publish and let peers use them first',
    );
  });

  it('pickles and restores everything, encrypted, for the same identity only', async () => {
    const identity = generateIdentityKeyPair();
    const clock = clockAt(42);
    const store = PrekeyStore.create(identity, { clock });
    store.generateOneTimePrekeys(4);
    store.generateOneTimeKemPrekeys(2);
    store.rotateSignedPrekey();
    const key = randomBytes(32);
    const restored = await PrekeyStore.fromPickle(await store.pickle(key), identity, key);
    const bundleOf = (s: PrekeyStore) => {
      const p = s.publication();
      return {
        bundle: encodePrekeyBundle({
          identityKey: p.identityKey,
          signedPrekey: p.signedPrekey,
          kemPrekey: p.lastResortKemPrekey,
        }),
        oneTime: p.oneTimePrekeys.map((o) => o.publicKey.fingerprint()),
        kem: p.oneTimeKemPrekeys.map((o) => o.publicKey.fingerprint()),
      };
    };
    expect(bundleOf(restored)).toEqual(bundleOf(store));
    expect(restored.signedPrekeyCreatedAt).toBe(42);
    // Ids keep counting from where they were: no id is handed out twice.
    const next = restored.generateOneTimePrekeys(1)[0]!.id;
    expect(store.publication().oneTimePrekeys.map((p) => p.id)).not.toContain(next);
    await expectProtocolError(
      PrekeyStore.fromPickle(await store.pickle(key), generateIdentityKeyPair(), key),
      ProtocolErrorCode.IdentityMismatch,
    );
    await expectProtocolError(
      PrekeyStore.fromPickle(await store.pickle(key), identity, randomBytes(32)),
      ProtocolErrorCode.BadPickle,
      'prekey store pickle: does not decrypt (another key, or corrupted)',
    );
    const plain = await store.pickle();
    // A plain pickle is deterministic: restoring and pickling again gives the same bytes.
    expect(await (await PrekeyStore.fromPickle(plain, identity)).pickle()).toEqual(plain);
    await expectProtocolError(
      PrekeyStore.fromPickle(plain.subarray(0, 100), identity),
      ProtocolErrorCode.BadPickle,
    );
    await expectProtocolError(
      PrekeyStore.fromPickle(Uint8Array.of(...plain, 0), identity),
      ProtocolErrorCode.BadPickle,
      'prekey store pickle: 1 unexpected bytes after the end',
    );
  });

  it('never prints a secret', () => {
    const identity = generateIdentityKeyPair();
    const store = PrekeyStore.create(identity);
    store.generateOneTimePrekeys(2);
    expect(JSON.stringify(store)).toBe(
      JSON.stringify(
        `PrekeyStore(${identity.publicKey.fingerprint()}, signed #${store.signedPrekey.id}, one-time 2, one-time KEM 0)`,
      ),
    );
  });
});
