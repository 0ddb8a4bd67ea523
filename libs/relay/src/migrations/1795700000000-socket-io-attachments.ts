import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The table of the socket.io PostgreSQL adapter (@socket.io/postgres-adapter 0.5, its default
 * `tableName`): a NOTIFY payload holds at most 8,000 bytes and no binary, so a broadcast with
 * binary data (every `mail` push: envelopes are bytes) or a large one is written here and only
 * its id is notified; the other nodes read the row. The adapter deletes rows older than its
 * `cleanupInterval` (30 s) itself, with `created_at < now() - interval`, hence the index.
 *
 * The rows are msgpack-encoded broadcasts: ciphertext envelopes and relay-stamped metadata, the
 * same data `usm_mail` holds, never plaintext. `IF NOT EXISTS`: a host that already runs the
 * adapter on this database keeps its table (the columns are the adapter's documented ones).
 */
export class SocketIoAttachments1795700000000 implements MigrationInterface {
  name = 'SocketIoAttachments1795700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS socket_io_attachments (
        id          bigserial   UNIQUE,
        created_at  timestamptz DEFAULT now(),
        payload     bytea
      )`);
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS socket_io_attachments_created_at_idx ON socket_io_attachments (created_at)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS socket_io_attachments`);
  }
}
