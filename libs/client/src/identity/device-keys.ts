/**
 * This device's long-term keys: the identity key pair and the prekey store, loaded from the
 * ClientStore or created (and stored in one batch) on first use; and the safety number of this
 * identity with a peer's.
 */
import {
  type IdentityKeyPair,
  IdentityPublicKey,
  decodeIdentityKeyPair,
  generateIdentityKeyPair,
  safetyNumber,
  wipe,
} from '@usm/crypto';
import { type AddressString, type Clock, PrekeyStore, parseAddress } from '@usm/protocol';
import { IDENTITY_KEY, PREKEYS_KEY } from '../client-records.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { ClientStore } from '../storage/client-store.js';

export interface DeviceKeys {
  readonly identity: IdentityKeyPair;
  readonly prekeys: PrekeyStore;
}

/** Loads the identity and prekeys from `store`, or creates them; CORRUPT_STORE when they do not load. */
export async function loadDeviceKeys(store: ClientStore, clock: Clock): Promise<DeviceKeys> {
  const storedIdentity = await store.get(IDENTITY_KEY);
  if (storedIdentity) {
    const storedPrekeys = await store.get(PREKEYS_KEY);
    try {
      const identity = decodeIdentityKeyPair(storedIdentity);
      if (!storedPrekeys) throw new Error('no prekeys');
      return {
        identity,
        prekeys: await PrekeyStore.fromPickle(storedPrekeys, identity, undefined, { clock }),
      };
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.CorruptStore,
        'the stored identity or prekeys do not load; restore a backup of the store',
        { cause: err },
      );
    } finally {
      wipe(storedIdentity);
    }
  }
  const identity = generateIdentityKeyPair();
  const prekeys = PrekeyStore.create(identity, { clock });
  const secret = identity.secretKey.encode();
  try {
    await store.write({
      put: [
        [IDENTITY_KEY, secret],
        [PREKEYS_KEY, await prekeys.pickle()],
      ],
    });
  } finally {
    wipe(secret);
  }
  return { identity, prekeys };
}

/**
 * The 60-digit safety number of `identity` (at address `self`) and `peer`'s identity
 * (libsignal's numeric fingerprint; stable id: the identity part of each address).
 */
export function safetyNumberOf(identity: IdentityKeyPair, self: AddressString, peer: AddressString): string {
  const stableId = (a: string) => a.slice(0, a.indexOf('.'));
  return safetyNumber(
    { identityKey: identity.publicKey, stableId: stableId(self) },
    { identityKey: new IdentityPublicKey(parseAddress(peer).identityKey), stableId: stableId(peer) },
  );
}
