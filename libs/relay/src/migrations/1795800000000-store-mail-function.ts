import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `usm_store_mail`: one group commit of the message store as one statement, so a send costs one
 * round trip to PostgreSQL instead of three (BEGIN with the mailbox locks, the insert, COMMIT).
 * Called as `SELECT idx, outcome, seq FROM usm_store_mail(...)` outside any explicit transaction,
 * the call is its own transaction: its advisory locks are held until it commits.
 *
 * What it does, in order:
 * 1. Takes the transaction-scoped advisory lock of every mailbox in the batch, in ascending key
 *    order (one global order: no deadlocks between nodes). Stores to one mailbox are serialised,
 *    so its quota holds across nodes.
 * 2. One query, run after the locks were granted: a VOLATILE PL/pgSQL function takes a new
 *    snapshot for each query it runs (PostgreSQL manual, "Function Volatility Categories"), so in
 *    READ COMMITTED this query sees every store that committed before the locks were granted.
 *    It skips envelopes already stored (same recipient and message id: a primary-key lookup),
 *    reads each mailbox's count from `usm_mailbox_counts`, inserts what fits under the quota in
 *    batch order, and returns one row per envelope: 'stored' with the row's `seq` (its fetch
 *    cursor), or 'rejected' (over quota). An envelope with neither was a duplicate.
 *
 * `usm_mailbox_counts` holds each recipient's row count in `usm_mail`, kept by statement-level
 * triggers on every INSERT and DELETE (store, ack, cleanup, or anything else). Counting a mailbox's
 * rows instead made every store walk the mailbox's index entries, dead ones included: mail is
 * inserted and deleted within seconds, so until autovacuum came by a store read thousands of dead
 * entries, and its cost grew with every message (measured: 107, then 330 µs of PostgreSQL CPU
 * per message over two runs of 20,000). The delete trigger locks the counts in recipient order,
 * the order the insert trigger upserts them in, so two statements never deadlock on them. Counts
 * include expired rows not yet cleaned up, as the quota always did.
 *
 * The three functions run with `enable_seqscan = off`: PL/pgSQL keeps a generic plan per session,
 * and one made while `usm_mail` was small (a new relay) scanned the whole table, dead rows
 * included, for the duplicate check; every lookup here is by a key, so an index is always right.
 *
 * The parameters are parallel arrays, one element per envelope (`p_i` the caller's index); the
 * function stores nothing but what it is given: ciphertext and relay-stamped metadata.
 */
export class StoreMailFunction1795800000000 implements MigrationInterface {
  name = 'StoreMailFunction1795800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE usm_mailbox_counts (
        recipient text   NOT NULL PRIMARY KEY,
        held      bigint NOT NULL CHECK (held >= 0)
      )`);
    await queryRunner.query(`
      INSERT INTO usm_mailbox_counts (recipient, held)
      SELECT recipient, count(*) FROM usm_mail GROUP BY recipient`);
    await queryRunner.query(`
      CREATE FUNCTION usm_mail_count_inserted() RETURNS trigger LANGUAGE plpgsql
      SET enable_seqscan = off AS $fn$
      BEGIN
        INSERT INTO usm_mailbox_counts AS c (recipient, held)
        SELECT recipient, count(*) FROM inserted GROUP BY recipient ORDER BY recipient
        ON CONFLICT (recipient) DO UPDATE SET held = c.held + excluded.held;
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE FUNCTION usm_mail_count_deleted() RETURNS trigger LANGUAGE plpgsql
      SET enable_seqscan = off AS $fn$
      BEGIN
        PERFORM 1 FROM usm_mailbox_counts
          WHERE recipient IN (SELECT DISTINCT recipient FROM deleted) ORDER BY recipient FOR UPDATE;
        UPDATE usm_mailbox_counts AS c SET held = c.held - d.n
          FROM (SELECT recipient, count(*) AS n FROM deleted GROUP BY recipient) AS d
         WHERE c.recipient = d.recipient;
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE TRIGGER usm_mail_counted_insert AFTER INSERT ON usm_mail
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION usm_mail_count_inserted()`);
    await queryRunner.query(`
      CREATE TRIGGER usm_mail_counted_delete AFTER DELETE ON usm_mail
        REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION usm_mail_count_deleted()`);
    await queryRunner.query(`
      CREATE FUNCTION usm_store_mail(
        p_locks bigint[], p_i int[], p_recipient text[], p_message_id bytea[], p_sender text[],
        p_envelope bytea[], p_expires_at timestamptz[], p_created_at timestamptz, p_quota bigint)
      RETURNS TABLE (idx int, outcome text, seq bigint)
      LANGUAGE plpgsql VOLATILE
      SET enable_seqscan = off AS $fn$
      BEGIN
        PERFORM pg_advisory_xact_lock(k) FROM unnest(p_locks) AS k ORDER BY k;
        RETURN QUERY
        WITH b AS (
               SELECT * FROM unnest(p_i, p_recipient, p_message_id, p_sender, p_envelope, p_expires_at)
                 AS b(i, r, m, s, e, x)),
             fresh AS (
               SELECT b.* FROM b
                WHERE NOT EXISTS (SELECT 1 FROM usm_mail AS u WHERE u.recipient = b.r AND u.message_id = b.m)),
             held AS (
               SELECT c.recipient, c.held AS n FROM usm_mailbox_counts AS c
                WHERE c.recipient IN (SELECT DISTINCT r FROM fresh)),
             ranked AS (
               SELECT fresh.*, coalesce(held.n, 0) + row_number() OVER (PARTITION BY fresh.r ORDER BY fresh.i) AS pos
                 FROM fresh LEFT JOIN held ON held.recipient = fresh.r),
             ins AS (
               INSERT INTO usm_mail AS u (recipient, message_id, sender, envelope, created_at, expires_at)
               SELECT r, m, s, e, p_created_at, x FROM ranked WHERE pos <= p_quota
               ON CONFLICT (recipient, message_id) DO NOTHING
               RETURNING u.recipient, u.message_id, u.seq)
        SELECT ranked.i, 'stored'::text, ins.seq FROM ranked JOIN ins ON ins.recipient = ranked.r AND ins.message_id = ranked.m
        UNION ALL
        SELECT ranked.i, 'rejected'::text, NULL::bigint FROM ranked WHERE pos > p_quota;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION IF EXISTS usm_store_mail(bigint[], int[], text[], bytea[], text[], bytea[], timestamptz[], timestamptz, bigint)`,
    );
    await queryRunner.query(`DROP TRIGGER IF EXISTS usm_mail_counted_delete ON usm_mail`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS usm_mail_counted_insert ON usm_mail`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS usm_mail_count_deleted()`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS usm_mail_count_inserted()`);
    await queryRunner.query(`DROP TABLE IF EXISTS usm_mailbox_counts`);
  }
}
