import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import {
  PrekeyDirectoryService,
  type PrekeySignatureVerifier,
  type PrekeyUpload,
  type SignedPrekey,
} from '../src/prekeys/prekey-directory.service.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import { RelayError, RelayErrorCode } from '../src/relay.errors.js';
import { RELAY_MESSAGES as M } from '../src/relay.messages.js';
import { address, kit, type Kit } from './fixtures.js';

const bytes = (n: number) => new Uint8Array(randomBytes(n));
const signed = (keyId: number, size = 32): SignedPrekey => ({
  keyId,
  publicKey: bytes(size),
  signature: bytes(64),
});
const otps = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ keyId: from + i, publicKey: bytes(32) }));

describe('PrekeyDirectoryService', () => {
  const pg = usePostgres();
  let ds: DataSource;
  let k: Kit;
  let directory: PrekeyDirectoryService;

  beforeAll(async () => {
    ds = await pg.dataSource();
    await runMigrations(ds);
    k = kit(ds, pg.url, { prekeys: { lowWaterMark: 3, maxStoredOneTimePrekeys: 150 } });
    directory = new PrekeyDirectoryService(k.db, k.options, k.clock);
  });

  const firstUpload = (count: number): PrekeyUpload => ({
    identityKey: bytes(34),
    signedPrekey: signed(1),
    kemPrekey: signed(2, 1_184),
    lastResortKemPrekey: signed(3, 1_184),
    oneTimePrekeys: otps(100, count),
  });

  it('publishes a bundle and hands each one-time prekey out once, then a bundle without one', async () => {
    const bob = address('bob');
    const upload = firstUpload(2);
    expect(await directory.publish(bob, upload)).toEqual({
      added: 2,
      remaining: 2,
      lowWaterMark: 3,
      belowLowWater: true,
    });

    const first = await directory.claim(bob);
    expect(first?.bundle).toEqual({
      address: bob,
      identityKey: upload.identityKey,
      signedPrekey: upload.signedPrekey,
      kemPrekey: upload.kemPrekey,
      lastResortKemPrekey: upload.lastResortKemPrekey,
      oneTimePrekey: upload.oneTimePrekeys?.[0],
    });
    expect(first?.stock).toEqual({ remaining: 1, lowWaterMark: 3, belowLowWater: true });
    expect((await directory.claim(bob))?.bundle.oneTimePrekey).toEqual(upload.oneTimePrekeys?.[1]);
    const none = await directory.claim(bob);
    expect(none?.bundle.oneTimePrekey).toBeNull();
    expect(none?.bundle.kemPrekey).toEqual(upload.kemPrekey);
    expect(none?.stock.remaining).toBe(0);
    expect(await directory.claim(address('nobody'))).toBeNull();
  });

  it('100 concurrent claims on two nodes for 10 one-time prekeys: each handed out at most once', async () => {
    const bob = address('bob');
    await directory.publish(bob, firstUpload(10));
    const nodeB = new PrekeyDirectoryService(new RelayDatabase(await pg.dataSource()), k.options, k.clock);

    const claims = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? directory : nodeB).claim(bob)),
    );
    const handedOut = claims.map((c) => c?.bundle.oneTimePrekey?.keyId).filter((id) => id !== undefined);
    expect(handedOut).toHaveLength(10);
    expect(new Set(handedOut).size).toBe(10);
    expect(claims.filter((c) => c?.bundle.oneTimePrekey === null)).toHaveLength(90);
    expect(await directory.stockOf(bob)).toEqual({ remaining: 0, lowWaterMark: 3, belowLowWater: true });
  });

  it('adds one-time prekeys in later uploads, ignores known key ids, and rotates signed prekeys', async () => {
    const bob = address('bob');
    const upload = firstUpload(5);
    await directory.publish(bob, upload);
    const more = await directory.publish(bob, {
      identityKey: upload.identityKey,
      signedPrekey: signed(7),
      oneTimePrekeys: [...otps(104, 3), ...otps(104, 1)],
    });
    expect(more).toEqual({ added: 2, remaining: 7, lowWaterMark: 3, belowLowWater: false });
    const claimed = await directory.claim(bob);
    expect(claimed?.bundle.signedPrekey.keyId).toBe(7);
    expect(claimed?.bundle.kemPrekey).toEqual(upload.kemPrekey);
  });

  it('refuses an incomplete first upload, a changed identity key, too many keys, and a full store', async () => {
    const bob = address('bob');
    const refuse = (p: Promise<unknown>, code: RelayErrorCode, message: string) =>
      expect(p).rejects.toThrow(new RelayError(code, message));
    await refuse(
      directory.publish(bob, { identityKey: bytes(34), oneTimePrekeys: otps(1, 3) }),
      RelayErrorCode.BadPrekey,
      M.firstUploadIncomplete(),
    );
    expect(await directory.claim(bob)).toBeNull();

    const upload = firstUpload(100);
    await directory.publish(bob, upload);
    await refuse(
      directory.publish(bob, { ...firstUpload(0), identityKey: bytes(34) }),
      RelayErrorCode.BadPrekey,
      M.identityKeyChanged(),
    );
    await refuse(
      directory.publish(bob, { identityKey: upload.identityKey, oneTimePrekeys: otps(500, 101) }),
      RelayErrorCode.InvalidInput,
      M.tooManyOneTimePrekeys(101, 100),
    );
    await refuse(
      directory.publish(bob, { identityKey: upload.identityKey, oneTimePrekeys: otps(500, 51) }),
      RelayErrorCode.BadPrekey,
      M.prekeyStoreFull(150),
    );
    await refuse(
      directory.publish(bob, { identityKey: upload.identityKey, signedPrekey: { ...signed(1), keyId: -1 } }),
      RelayErrorCode.InvalidInput,
      M.badKeyId('signed prekey'),
    );
    // Nothing of the refused uploads was stored.
    expect((await directory.stockOf(bob)).remaining).toBe(100);
  });

  it('calls the signature hook before storing, and stores nothing when it refuses', async () => {
    const bob = address('bob');
    const seen: string[] = [];
    const verifier: PrekeySignatureVerifier = {
      verify(addr, upload) {
        seen.push(addr);
        if (upload.signedPrekey?.keyId === 666) throw new Error('bad signature');
      },
    };
    const verified = new PrekeyDirectoryService(k.db, k.options, k.clock, verifier);
    await expect(verified.publish(bob, { ...firstUpload(1), signedPrekey: signed(666) })).rejects.toThrow(
      'bad signature',
    );
    expect(await verified.claim(bob)).toBeNull();
    await verified.publish(bob, firstUpload(1));
    expect(seen).toEqual([bob, bob]);
  });
});
