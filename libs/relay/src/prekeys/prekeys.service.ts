/**
 * The prekey events (`prekeys:publish`, `prekeys:claim`, `prekeys:count`) on the directory. Records
 * travel and are stored as opaque bytes (the protocol's session/ encodings, signature inside), so
 * the directory's `signature` of each is empty. A claim that took a one-time prekey and left the
 * owner below `prekeys.lowWaterMark` pushes `prekeys:low` to the owner's mailbox room.
 */
import { Injectable } from '@nestjs/common';
import {
  type AddressString,
  type PrekeyRecord,
  type PrekeysClaimRequest,
  type PrekeysClaimResult,
  type PrekeysCountResult,
  type PrekeysPublishRequest,
  type PrekeysPublishResult,
  ProtocolError,
  ProtocolErrorCode,
  type Reply,
  mailboxRoom,
  parseAddress,
} from '@usm/protocol';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import { RelaySockets } from '../socket/relay-server.js';
import { PrekeyDirectoryService, type PrekeyUpload, type SignedPrekey } from './prekey-directory.service.js';

const NO_SIGNATURE = new Uint8Array(0);

const signed = (r: PrekeyRecord): SignedPrekey => ({
  keyId: r.id,
  publicKey: r.record,
  signature: NO_SIGNATURE,
});
const record = (p: { keyId: number; publicKey: Uint8Array }): PrekeyRecord => ({
  id: p.keyId,
  record: p.publicKey,
});

@Injectable()
export class RelayPrekeysService {
  constructor(
    private readonly directory: PrekeyDirectoryService,
    private readonly sockets: RelaySockets,
  ) {}

  /** Publishes `owner`'s prekeys (the socket's own address). */
  async publish(owner: AddressString, request: PrekeysPublishRequest): Promise<Reply<PrekeysPublishResult>> {
    const upload: PrekeyUpload = {
      identityKey: parseAddress(owner).identityKey,
      ...(request.signedPrekey ? { signedPrekey: signed(request.signedPrekey) } : {}),
      ...(request.kemPrekey ? { kemPrekey: signed(request.kemPrekey) } : {}),
      ...(request.oneTimePrekeys
        ? { oneTimePrekeys: request.oneTimePrekeys.map((p) => ({ keyId: p.id, publicKey: p.record })) }
        : {}),
    };
    const result = await this.directory.publish(owner, upload);
    return { status: 'ok', oneTimePrekeys: result.remaining };
  }

  /** Claims `address`'s bundle; BAD_PREKEY when it never published. */
  async claim({ address }: PrekeysClaimRequest): Promise<Reply<PrekeysClaimResult>> {
    const claimed = await this.directory.claim(address);
    if (!claimed) throw new ProtocolError(ProtocolErrorCode.BadPrekey, M.noPrekeys());
    const { bundle, stock } = claimed;
    // Told once per claimed key while below the mark; claims on an empty stock stay silent.
    if (bundle.oneTimePrekey && stock.belowLowWater) {
      this.sockets.io
        ?.to(mailboxRoom(address))
        .emit('prekeys:low', { remaining: stock.remaining, threshold: stock.lowWaterMark });
    }
    return {
      status: 'ok',
      bundle: {
        address,
        signedPrekey: record(bundle.signedPrekey),
        kemPrekey: record(bundle.kemPrekey),
        oneTimePrekey: bundle.oneTimePrekey ? record(bundle.oneTimePrekey) : null,
      },
    };
  }

  /** `owner`'s own stock. */
  async count(owner: AddressString): Promise<Reply<PrekeysCountResult>> {
    const inventory = await this.directory.inventoryOf(owner);
    return {
      status: 'ok',
      oneTimePrekeys: inventory.remaining,
      hasSignedPrekey: inventory.published,
      hasKemPrekey: inventory.published,
    };
  }
}
