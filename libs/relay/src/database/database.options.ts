import type { DataSource } from 'typeorm';

/** The relay opens and owns its DataSource (named 'usm-relay'). */
export interface RelayDatabaseUrlOptions {
  /** PostgreSQL connection URL: `postgres://user:password@host:5432/db`. */
  url: string;
  /**
   * Connections in the relay's pool.
   * @default 10
   */
  poolSize?: number;
  /**
   * Apply pending relay migrations at start-up, under an advisory lock so several nodes can start at
   * once. Set false when your deploy step runs them (export RELAY_MIGRATIONS).
   * @default true
   */
  migrationsRun?: boolean;
  /**
   * TLS to the database: `true`, or node's `tls.ConnectionOptions`.
   * @default false
   */
  ssl?: boolean | Record<string, unknown>;
}

/** The relay shares an initialised PostgreSQL DataSource of the host; the host destroys it. */
export interface RelayDatabaseDataSourceOptions {
  /** An initialised TypeORM DataSource of type 'postgres'. The relay reads and writes only its `usm_*` tables. */
  dataSource: DataSource;
  /**
   * Apply pending relay migrations at start-up (history in its own table, `usm_migrations`).
   * @default true
   */
  migrationsRun?: boolean;
}

/** Where the relay keeps all shared state (mail, prekeys, rate-limit counters, replay nonces). */
export type RelayDatabaseOptions = RelayDatabaseUrlOptions | RelayDatabaseDataSourceOptions;

/** `database` with its defaults filled in. */
export type ResolvedRelayDatabaseOptions =
  Required<RelayDatabaseUrlOptions> | Required<RelayDatabaseDataSourceOptions>;
