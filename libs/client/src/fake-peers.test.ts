/**
 * Test kit of the client's unit specs (kept out of the build and of jest's match by its name):
 * devices with real keys, the bundle a relay hands out for one, and mail a peer sends.
 */
import { type IdentityKeyPair, generateIdentityKeyPair } from '@usm/crypto';
import {
  type Address,
  type AddressString,
  type ApplicationPayload,
  type Clock,
  type MailItem,
  type MessageIdString,
  type PrekeyBundle,
  PayloadKind,
  PrekeyStore,
  Session,
  addressOf,
  bundleFromClaim,
  encodeEnvelope,
  formatAddress,
  formatMessageId,
  generateMessageId,
  publishRequestOf,
  sealApplicationPayload,
} from '@usm/protocol';

export interface Device {
  readonly identity: IdentityKeyPair;
  readonly prekeys: PrekeyStore;
  readonly self: Address;
  readonly address: AddressString;
}

export function newDevice(clock?: Clock): Device {
  const identity = generateIdentityKeyPair();
  const self = addressOf(identity.publicKey);
  return {
    identity,
    prekeys: PrekeyStore.create(identity, clock ? { clock } : {}),
    self,
    address: formatAddress(self),
  };
}

/** What the relay's `prekeys:claim` returns for `device` (no one-time prekey). */
export function claimOf(device: Device): PrekeyBundle {
  const published = publishRequestOf({
    signedPrekey: device.prekeys.signedPrekey,
    lastResortKemPrekey: device.prekeys.lastResortKemPrekey,
  });
  return {
    address: device.address,
    signedPrekey: published.signedPrekey!,
    kemPrekey: published.kemPrekey!,
    oneTimePrekey: null,
  };
}

/** A session of `from` with `to`, set up from `to`'s bundle (first contact). */
export function sessionWith(from: Device, to: Device): Session {
  return Session.initiate(from.identity, bundleFromClaim(claimOf(to)), to.identity.publicKey);
}

let cursor = 0;

/** `payload` encrypted with `session` by `from`, as the relay hands it to `to`. */
export async function mail(
  from: Device,
  session: Session,
  to: Device,
  payload: ApplicationPayload,
): Promise<{ item: MailItem; id: MessageIdString }> {
  const idBytes = generateMessageId();
  const ciphertext = await session.encrypt(sealApplicationPayload(payload), idBytes);
  const envelope = encodeEnvelope({ id: idBytes, recipient: to.self, ciphertext });
  return {
    item: { envelope, sender: from.address, receivedAt: 0, cursor: String(cursor++) },
    id: formatMessageId(idBytes),
  };
}

/** A text payload. */
export const text = (sequence: number, body: string, sentAt = 1_800_000_000_000): ApplicationPayload => ({
  kind: PayloadKind.Text,
  sequence,
  sentAt,
  text: body,
});
