import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The relay's first schema: mail, the prekey directory, handshake replay nonces and rate-limit
 * counters. Nothing stored here is plaintext: envelopes are ciphertext built by clients, prekeys
 * are public keys, nonces are random bytes, addresses are public identifiers.
 *
 * Hot paths and the index each one uses:
 * - store: INSERT ... ON CONFLICT (recipient, message_id) DO NOTHING           -> primary key
 * - fetch: WHERE recipient = $1 AND seq > $cursor ORDER BY seq LIMIT n          -> (recipient, seq)
 * - ack:   DELETE WHERE recipient = $1 AND message_id = ANY($2)                 -> primary key
 * - quota: each mailbox's count in usm_mailbox_counts (1795800000000, kept by triggers)
 * - cleanup: ctid = ANY(ARRAY(SELECT ctid WHERE expires_at < $1 LIMIT n ...))   -> (expires_at)
 * - prekey claim: the lowest key id of one address, FOR UPDATE SKIP LOCKED       -> (address, key_id)
 */
export class RelayInitialSchema1795600000000 implements MigrationInterface {
  name = 'RelayInitialSchema1795600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Mail: one row per (recipient, message id). `seq` is a stable, strictly increasing cursor for
    // paging oldest first: timestamps collide, a bigint identity does not.
    await queryRunner.query(`
      CREATE TABLE usm_mail (
        recipient   text        NOT NULL,
        message_id  bytea       NOT NULL CHECK (octet_length(message_id) = 16),
        seq         bigint      GENERATED ALWAYS AS IDENTITY,
        sender      text        NOT NULL,
        envelope    bytea       NOT NULL,
        created_at  timestamptz NOT NULL,
        expires_at  timestamptz NOT NULL,
        CONSTRAINT usm_mail_pkey PRIMARY KEY (recipient, message_id)
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX usm_mail_recipient_seq_idx ON usm_mail (recipient, seq)`);
    await queryRunner.query(`CREATE INDEX usm_mail_expires_at_idx ON usm_mail (expires_at)`);

    // Prekey directory: one row per address with its signed prekeys (opaque bytes, verified by
    // the protocol layer), one-time prekeys in their own table so each is claimed by deleting it.
    await queryRunner.query(`
      CREATE TABLE usm_prekeys (
        address                       text        NOT NULL,
        identity_key                  bytea       NOT NULL,
        signed_prekey_id              bigint      NOT NULL,
        signed_prekey                 bytea       NOT NULL,
        signed_prekey_signature       bytea       NOT NULL,
        kem_prekey_id                 bigint      NOT NULL,
        kem_prekey                    bytea       NOT NULL,
        kem_prekey_signature          bytea       NOT NULL,
        last_resort_kem_prekey_id     bigint,
        last_resort_kem_prekey        bytea,
        last_resort_kem_prekey_signature bytea,
        updated_at                    timestamptz NOT NULL,
        CONSTRAINT usm_prekeys_pkey PRIMARY KEY (address)
      )`);
    await queryRunner.query(`
      CREATE TABLE usm_one_time_prekeys (
        address     text   NOT NULL,
        key_id      bigint NOT NULL,
        public_key  bytea  NOT NULL,
        CONSTRAINT usm_one_time_prekeys_pkey PRIMARY KEY (address, key_id)
      )`);

    // Handshake replay store: a nonce is remembered until its handshake could no longer be
    // accepted (timestamp window), then cleaned up.
    await queryRunner.query(`
      CREATE TABLE usm_replay_nonces (
        nonce       bytea       NOT NULL,
        expires_at  timestamptz NOT NULL,
        CONSTRAINT usm_replay_nonces_pkey PRIMARY KEY (nonce)
      )`);
    await queryRunner.query(
      `CREATE INDEX usm_replay_nonces_expires_at_idx ON usm_replay_nonces (expires_at)`,
    );

    // Rate-limit counters, in the exact layout rate-limiter-flexible's RateLimiterPostgres uses
    // (it runs with tableCreated: true, so it never issues DDL). `expire` is epoch milliseconds.
    await queryRunner.query(`
      CREATE TABLE usm_rate_limits (
        key     varchar(255) NOT NULL,
        points  integer      NOT NULL DEFAULT 0,
        expire  bigint,
        CONSTRAINT usm_rate_limits_pkey PRIMARY KEY (key)
      )`);
    await queryRunner.query(`CREATE INDEX usm_rate_limits_expire_idx ON usm_rate_limits (expire)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE usm_rate_limits`);
    await queryRunner.query(`DROP TABLE usm_replay_nonces`);
    await queryRunner.query(`DROP TABLE usm_one_time_prekeys`);
    await queryRunner.query(`DROP TABLE usm_prekeys`);
    await queryRunner.query(`DROP TABLE usm_mail`);
  }
}
