/**
 * The prekey directory (docs/protocol.md, "Session setup", "Prekeys"): identities publish a signed X25519 prekey, a signed
 * KEM prekey, an optional last-resort KEM prekey and one-time X25519 prekeys; anyone may claim a
 * bundle to start a session. Each one-time prekey is handed out at most once, across every node:
 * a claim deletes it in the same statement that selects it (`FOR UPDATE SKIP LOCKED`), so two
 * concurrent claims never receive the same key; when none are left the bundle carries none.
 *
 * Keys and signatures are opaque bytes here. Verifying signatures against the identity key is the
 * protocol layer's job: provide a `PrekeySignatureVerifier` (the hook below) and publish calls it
 * before anything is written. Clients verify every bundle they claim in any case.
 */
import { Inject, Injectable, Optional } from '@nestjs/common';
import { asBuffer, fromBuffer } from '../database/bytea.js';
import { InjectRelayClock, RelayClock } from '../relay-clock.js';
import { RelayDatabase } from '../database/relay-database.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

/**
 * A medium-term prekey with the identity key's signature over it. The signature may be empty when
 * `publicKey` holds a self-describing signed record (the gateway stores the protocol's encoded
 * prekey records, signature inside, as opaque bytes).
 */
export interface SignedPrekey {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
}

export interface OneTimePrekey {
  keyId: number;
  publicKey: Uint8Array;
}

/**
 * What an identity publishes. The first upload must carry `signedPrekey` and `kemPrekey`; later
 * uploads may carry only what changes (a rotated signed prekey, more one-time prekeys).
 */
export interface PrekeyUpload {
  /** The identity's public key, as the protocol encodes it. Never changes for an address. */
  identityKey: Uint8Array;
  signedPrekey?: SignedPrekey;
  kemPrekey?: SignedPrekey;
  lastResortKemPrekey?: SignedPrekey;
  /** At most `prekeys.maxOneTimePrekeysPerUpload` (default 100). Known key ids are ignored. */
  oneTimePrekeys?: readonly OneTimePrekey[];
}

export interface PrekeyBundle {
  address: string;
  identityKey: Uint8Array;
  signedPrekey: SignedPrekey;
  kemPrekey: SignedPrekey;
  lastResortKemPrekey: SignedPrekey | null;
  /** Null when the identity has none left. */
  oneTimePrekey: OneTimePrekey | null;
}

/** How many one-time prekeys an identity has left, and whether it should upload more. */
export interface PrekeyStock {
  remaining: number;
  lowWaterMark: number;
  /** remaining < lowWaterMark: tell the owner to upload more. */
  belowLowWater: boolean;
}

export interface PublishResult extends PrekeyStock {
  /** One-time prekeys this upload added (key ids already stored are not counted). */
  added: number;
}

/** What an address has published: its one-time prekey stock and whether its bundle exists. */
export interface PrekeyInventory extends PrekeyStock {
  /** A signed prekey and a signed KEM prekey are held (the first upload must carry both). */
  published: boolean;
}

export interface ClaimResult {
  bundle: PrekeyBundle;
  /** The owner's stock after this claim: the gateway notifies the owner when it is low. */
  stock: PrekeyStock;
}

/**
 * The signature hook: checks an upload's signatures against its identity key before the directory
 * stores it, and throws to refuse (a ProtocolError with BAD_SIGNATURE, say). Provide it with
 * `{ provide: PrekeySignatureVerifier, useClass: ... }`; without one, uploads are stored unverified.
 */
export interface PrekeySignatureVerifier {
  verify(address: string, upload: PrekeyUpload): Promise<void> | void;
}

/** DI token of the optional PrekeySignatureVerifier. */
export const PrekeySignatureVerifier = Symbol('PrekeySignatureVerifier');

interface BundleRow {
  identity_key: Buffer;
  signed_prekey_id: string;
  signed_prekey: Buffer;
  signed_prekey_signature: Buffer;
  kem_prekey_id: string;
  kem_prekey: Buffer;
  kem_prekey_signature: Buffer;
  last_resort_kem_prekey_id: string | null;
  last_resort_kem_prekey: Buffer | null;
  last_resort_kem_prekey_signature: Buffer | null;
  otp_id: string | null;
  otp_key: Buffer | null;
  before: string;
}

/**
 * @example
 * await directory.publish(me, { identityKey, signedPrekey, kemPrekey, oneTimePrekeys });
 * const claimed = await directory.claim(peer);      // null: the peer never published
 * if (claimed?.stock.belowLowWater) notifyOwner(peer);
 */
@Injectable()
export class PrekeyDirectoryService {
  private readonly prekeys: ResolvedRelayOptions['prekeys'];
  private readonly maxAddressLength: number;

  constructor(
    private readonly db: RelayDatabase,
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'prekeys' | 'mail'>,
    @InjectRelayClock() private readonly clock: RelayClock,
    @Optional() @Inject(PrekeySignatureVerifier) private readonly verifier?: PrekeySignatureVerifier,
  ) {
    this.prekeys = options.prekeys;
    this.maxAddressLength = options.mail.maxAddressLength;
  }

  /** Publishes `upload` for `address` (the authenticated identity: the gateway guarantees it). */
  async publish(address: string, upload: PrekeyUpload): Promise<PublishResult> {
    this.checkAddress(address);
    const otps = this.checkUpload(upload);
    await this.verifier?.verify(address, upload);

    return this.db.transaction(async (sql) => {
      // One publish per address at a time, so the stored-count limit holds.
      await sql.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 1))`, [`prekeys:${address}`]);
      const current = await sql.query<{ identity_key: Buffer }>(
        `SELECT identity_key FROM usm_prekeys WHERE address = $1`,
        [address],
      );
      const now = new Date(this.clock.now());
      const id = asBuffer(upload.identityKey);
      const existing = current.rows[0];
      const lr = upload.lastResortKemPrekey;
      if (!existing) {
        if (!upload.signedPrekey || !upload.kemPrekey) {
          throw new RelayError(RelayErrorCode.BadPrekey, M.firstUploadIncomplete());
        }
        const s = upload.signedPrekey;
        const k = upload.kemPrekey;
        await sql.query(
          `INSERT INTO usm_prekeys (address, identity_key, signed_prekey_id, signed_prekey, signed_prekey_signature,
             kem_prekey_id, kem_prekey, kem_prekey_signature, last_resort_kem_prekey_id, last_resort_kem_prekey,
             last_resort_kem_prekey_signature, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            address,
            id,
            s.keyId,
            asBuffer(s.publicKey),
            asBuffer(s.signature),
            k.keyId,
            asBuffer(k.publicKey),
            asBuffer(k.signature),
            lr?.keyId ?? null,
            lr ? asBuffer(lr.publicKey) : null,
            lr ? asBuffer(lr.signature) : null,
            now,
          ],
        );
      } else {
        if (!existing.identity_key.equals(id))
          throw new RelayError(RelayErrorCode.BadPrekey, M.identityKeyChanged());
        const s = upload.signedPrekey;
        const k = upload.kemPrekey;
        await sql.query(
          `UPDATE usm_prekeys SET
             signed_prekey_id = COALESCE($2, signed_prekey_id),
             signed_prekey = COALESCE($3, signed_prekey),
             signed_prekey_signature = COALESCE($4, signed_prekey_signature),
             kem_prekey_id = COALESCE($5, kem_prekey_id),
             kem_prekey = COALESCE($6, kem_prekey),
             kem_prekey_signature = COALESCE($7, kem_prekey_signature),
             last_resort_kem_prekey_id = COALESCE($8, last_resort_kem_prekey_id),
             last_resort_kem_prekey = COALESCE($9, last_resort_kem_prekey),
             last_resort_kem_prekey_signature = COALESCE($10, last_resort_kem_prekey_signature),
             updated_at = $11
           WHERE address = $1`,
          [
            address,
            s?.keyId ?? null,
            s ? asBuffer(s.publicKey) : null,
            s ? asBuffer(s.signature) : null,
            k?.keyId ?? null,
            k ? asBuffer(k.publicKey) : null,
            k ? asBuffer(k.signature) : null,
            lr?.keyId ?? null,
            lr ? asBuffer(lr.publicKey) : null,
            lr ? asBuffer(lr.signature) : null,
            now,
          ],
        );
      }

      const held = Number(
        (
          await sql.query<{ n: string }>(
            `SELECT count(*) AS n FROM usm_one_time_prekeys WHERE address = $1`,
            [address],
          )
        ).rows[0]?.n ?? 0,
      );
      let added = 0;
      if (otps.length > 0) {
        if (held + otps.length > this.prekeys.maxStoredOneTimePrekeys) {
          throw new RelayError(
            RelayErrorCode.BadPrekey,
            M.prekeyStoreFull(this.prekeys.maxStoredOneTimePrekeys),
          );
        }
        const ins = await sql.query(
          `INSERT INTO usm_one_time_prekeys (address, key_id, public_key)
           SELECT $1, k, p FROM unnest($2::bigint[], $3::bytea[]) AS u(k, p)
           ON CONFLICT (address, key_id) DO NOTHING`,
          [address, otps.map((o) => o.keyId), otps.map((o) => asBuffer(o.publicKey))],
        );
        added = ins.rowCount;
      }
      return { added, ...this.stock(held + added) };
    });
  }

  /**
   * Claims `address`'s bundle, with one of its one-time prekeys (removed: never handed out again),
   * or none when none are left. Null when the address never published.
   */
  async claim(address: string): Promise<ClaimResult | null> {
    this.checkAddress(address);
    const { rows } = await this.db.query<BundleRow>(
      `WITH claimed AS (
         DELETE FROM usm_one_time_prekeys
          WHERE (address, key_id) = (
                  SELECT o.address, o.key_id FROM usm_one_time_prekeys AS o
                   WHERE o.address = $1 AND EXISTS (SELECT 1 FROM usm_prekeys WHERE address = $1)
                   ORDER BY o.key_id LIMIT 1
                   FOR UPDATE SKIP LOCKED)
         RETURNING key_id, public_key)
       SELECT p.identity_key, p.signed_prekey_id, p.signed_prekey, p.signed_prekey_signature,
              p.kem_prekey_id, p.kem_prekey, p.kem_prekey_signature, p.last_resort_kem_prekey_id,
              p.last_resort_kem_prekey, p.last_resort_kem_prekey_signature,
              c.key_id AS otp_id, c.public_key AS otp_key,
              (SELECT count(*) FROM usm_one_time_prekeys WHERE address = $1) AS before
         FROM usm_prekeys AS p LEFT JOIN claimed AS c ON true
        WHERE p.address = $1`,
      [address],
    );
    const r = rows[0];
    if (!r) return null;
    const signed = (id: string, key: Buffer, sig: Buffer): SignedPrekey => ({
      keyId: Number(id),
      publicKey: fromBuffer(key),
      signature: fromBuffer(sig),
    });
    const claimed = r.otp_id !== null && r.otp_key !== null;
    return {
      bundle: {
        address,
        identityKey: fromBuffer(r.identity_key),
        signedPrekey: signed(r.signed_prekey_id, r.signed_prekey, r.signed_prekey_signature),
        kemPrekey: signed(r.kem_prekey_id, r.kem_prekey, r.kem_prekey_signature),
        lastResortKemPrekey:
          r.last_resort_kem_prekey_id !== null &&
          r.last_resort_kem_prekey &&
          r.last_resort_kem_prekey_signature
            ? signed(
                r.last_resort_kem_prekey_id,
                r.last_resort_kem_prekey,
                r.last_resort_kem_prekey_signature,
              )
            : null,
        oneTimePrekey: claimed
          ? { keyId: Number(r.otp_id), publicKey: fromBuffer(r.otp_key as Buffer) }
          : null,
      },
      // The count was read in the statement's snapshot, before its own delete.
      stock: this.stock(Math.max(0, Number(r.before) - (claimed ? 1 : 0))),
    };
  }

  /** `address`'s one-time prekey stock. */
  async stockOf(address: string): Promise<PrekeyStock> {
    this.checkAddress(address);
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM usm_one_time_prekeys WHERE address = $1`,
      [address],
    );
    return this.stock(Number(rows[0]?.n ?? 0));
  }

  /** `address`'s stock and whether it has published its signed prekeys. */
  async inventoryOf(address: string): Promise<PrekeyInventory> {
    this.checkAddress(address);
    const { rows } = await this.db.query<{ n: string; published: boolean }>(
      `SELECT (SELECT count(*) FROM usm_one_time_prekeys WHERE address = $1) AS n,
              EXISTS (SELECT 1 FROM usm_prekeys WHERE address = $1) AS published`,
      [address],
    );
    return { ...this.stock(Number(rows[0]?.n ?? 0)), published: rows[0]?.published === true };
  }

  private stock(remaining: number): PrekeyStock {
    const lowWaterMark = this.prekeys.lowWaterMark;
    return { remaining, lowWaterMark, belowLowWater: remaining < lowWaterMark };
  }

  private checkAddress(address: unknown): void {
    if (typeof address !== 'string' || address.length < 1 || address.length > this.maxAddressLength) {
      const length = typeof address === 'string' ? address.length : 0;
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.badAddress('prekey', length, this.maxAddressLength),
      );
    }
  }

  private checkBytes(field: string, value: unknown, min = 1): void {
    const max = this.prekeys.maxKeyBytes;
    if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
      const length = value instanceof Uint8Array ? value.length : 0;
      throw new RelayError(RelayErrorCode.InvalidInput, M.badKey(field, length, max));
    }
  }

  private checkKeyId(field: string, keyId: unknown): void {
    if (typeof keyId !== 'number' || !Number.isSafeInteger(keyId) || keyId < 0) {
      throw new RelayError(RelayErrorCode.InvalidInput, M.badKeyId(field));
    }
  }

  private checkSigned(field: string, p: SignedPrekey | undefined): void {
    if (p === undefined) return;
    this.checkKeyId(field, p?.keyId);
    this.checkBytes(`${field} public key`, p.publicKey);
    this.checkBytes(`${field} signature`, p.signature, 0);
  }

  /** Validates an upload; returns its one-time prekeys without repeated key ids. */
  private checkUpload(upload: PrekeyUpload): OneTimePrekey[] {
    if (typeof upload !== 'object' || upload === null) {
      throw new RelayError(RelayErrorCode.BadPrekey, M.firstUploadIncomplete());
    }
    this.checkBytes('identity key', upload.identityKey);
    this.checkSigned('signed prekey', upload.signedPrekey);
    this.checkSigned('KEM prekey', upload.kemPrekey);
    this.checkSigned('last-resort KEM prekey', upload.lastResortKemPrekey);
    const otps = upload.oneTimePrekeys ?? [];
    const max = this.prekeys.maxOneTimePrekeysPerUpload;
    if (!Array.isArray(otps) || otps.length > max) {
      throw new RelayError(RelayErrorCode.InvalidInput, M.tooManyOneTimePrekeys(otps?.length ?? 0, max));
    }
    const byId = new Map<number, OneTimePrekey>();
    for (const o of otps) {
      this.checkKeyId('one-time prekey', o?.keyId);
      this.checkBytes('one-time prekey', o.publicKey);
      if (!byId.has(o.keyId)) byId.set(o.keyId, o);
    }
    return [...byId.values()];
  }
}
