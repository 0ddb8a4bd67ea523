/**
 * The relay's access to PostgreSQL: its DataSource (owned, or shared by the host), migrations under
 * an advisory lock, and a thin SQL helper.
 *
 * Queries go straight to the DataSource's pg pool with parameters, not through TypeORM's query
 * runner: TypeORM's logger prints parameters (envelopes, nonces) with a failed query, and pg errors
 * carry row values in `detail` and parameter values in their message (`value "..." is out of range
 * for type bigint`). Every database error leaves here as a RelayError holding only the SQLSTATE and
 * the names of the schema objects it concerns, never a message, a detail or a value.
 */
import { Logger } from '@nestjs/common';
import type pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { RELAY_MIGRATIONS } from '../migrations/index.js';
import { RELAY_MIGRATIONS_TABLE } from '../relay.constants.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs a parameterised statement: the pool, or one transaction's connection. */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<SqlResult<R>>;
}

/** The fields of a pg error that hold identifiers of the relay's schema, never values. */
const OBJECT_FIELDS = ['table', 'column', 'constraint', 'dataType'] as const;

/** An SQLSTATE or a driver's error code ('ECONNREFUSED'); anything else is reported as UNKNOWN. */
const ERROR_CODE = /^[A-Z0-9_]{1,40}$/;

/** An unquoted PostgreSQL identifier (at most 63 bytes), optionally schema-qualified. */
const IDENTIFIER = /^[A-Za-z0-9_.]{1,63}$/;

/**
 * A database failure without parameters or row values: safe to log and to send. The server's
 * message and detail are dropped, as they may quote a value a client sent.
 */
export class RelayDatabaseError extends RelayError {
  constructor(
    /** SQLSTATE (e.g. '23505') or the driver's error code (e.g. 'ECONNREFUSED'). */
    readonly sqlState: string,
    /** The schema objects the error names, e.g. 'table usm_mail, constraint usm_mail_pkey', or ''. For logs. */
    readonly objects = '',
  ) {
    super(RelayErrorCode.Database, M.database(sqlState));
  }

  /** `err` as a RelayError: itself when it is one, else its code and the schema objects it names. */
  static from(err: unknown): RelayError {
    if (err instanceof RelayError) return err;
    const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
    const code = typeof e['code'] === 'string' && ERROR_CODE.test(e['code']) ? e['code'] : 'UNKNOWN';
    const objects = OBJECT_FIELDS.flatMap((field) => {
      const name = e[field];
      return typeof name === 'string' && IDENTIFIER.test(name) ? [`${field} ${name}`] : [];
    });
    return new RelayDatabaseError(code, objects.join(', '));
  }
}

async function run<R>(q: pg.Pool | pg.PoolClient, text: string, values?: unknown[]): Promise<SqlResult<R>> {
  try {
    const r = await q.query(text, values);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  } catch (err) {
    throw RelayDatabaseError.from(err);
  }
}

/**
 * Runs SQL on the relay's DataSource.
 *
 * @example
 * const db = new RelayDatabase(dataSource);
 * const { rowCount } = await db.query('DELETE FROM usm_mail WHERE recipient = $1', [address]);
 */
export class RelayDatabase implements Sql {
  private readonly pool: pg.Pool;

  constructor(readonly dataSource: DataSource) {
    if (dataSource.options.type !== 'postgres') {
      throw new RelayError(RelayErrorCode.InvalidOptions, M.notPostgres(String(dataSource.options.type)));
    }
    const pool = (dataSource.driver as unknown as { master?: pg.Pool }).master;
    if (!dataSource.isInitialized || !pool) {
      throw new RelayError(RelayErrorCode.InvalidOptions, M.dataSourceNotInitialised());
    }
    this.pool = pool;
  }

  /** The DataSource's pg pool (the socket.io PostgreSQL adapter runs on it). */
  get pgPool(): pg.Pool {
    return this.pool;
  }

  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<SqlResult<R>> {
    return run<R>(this.pool, text, values);
  }

  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw RelayDatabaseError.from(err);
    }
    let broken = false;
    // pg-pool takes its own 'error' listener off a client it hands out, and pg emits 'error' on
    // a client whose connection dies (the database stopped: ECONNRESET, 57P01), even between or
    // during our statements. Unheard, that event ends the process; heard, the statement in
    // flight (or the next one) fails and the connection is discarded on release.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await run(client, 'BEGIN');
      const out = await fn({ query: (text, values) => run(client, text, values) });
      await run(client, 'COMMIT');
      return out;
    } catch (err) {
      if (!broken) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
      }
      throw RelayDatabaseError.from(err);
    } finally {
      client.release(broken);
      // A discarded client may still report its dead socket: keep listening, harmlessly.
      if (!broken) client.off('error', onError);
    }
  }
}

/** TypeORM options of a DataSource the relay owns. No entities, never `synchronize`. */
export function relayDataSourceOptions(db: {
  url: string;
  poolSize: number;
  ssl: unknown;
}): DataSourceOptions {
  return {
    type: 'postgres',
    url: db.url,
    poolSize: db.poolSize,
    ssl: db.ssl as boolean,
    applicationName: 'usm-relay',
    entities: [],
    migrations: [...RELAY_MIGRATIONS],
    migrationsTableName: RELAY_MIGRATIONS_TABLE,
    migrationsRun: false,
    synchronize: false,
    logging: false,
  };
}

/**
 * The relay's DataSource for its options: a new, initialised one for `{ url }` (owned: the relay
 * destroys it on shutdown), or the host's for `{ dataSource }`. Runs migrations when asked.
 */
export async function openRelayDataSource(
  options: ResolvedRelayOptions,
): Promise<{ dataSource: DataSource; owned: boolean }> {
  const db = options.database;
  let dataSource: DataSource;
  let owned = false;
  if ('dataSource' in db) {
    dataSource = db.dataSource;
    if (!dataSource.isInitialized)
      throw new RelayError(RelayErrorCode.InvalidOptions, M.dataSourceNotInitialised());
  } else {
    dataSource = new DataSource(relayDataSourceOptions(db));
    try {
      await dataSource.initialize();
    } catch (err) {
      throw RelayDatabaseError.from(err);
    }
    owned = true;
  }
  if (db.migrationsRun) {
    try {
      await runRelayMigrations(dataSource);
    } catch (err) {
      if (owned) await dataSource.destroy().catch(() => undefined);
      throw err;
    }
  }
  return { dataSource, owned };
}

/** Advisory-lock name: nodes starting together run the migrations one after another. */
const MIGRATION_LOCK = 'usm-relay:migrations';

/**
 * Applies pending relay migrations to the database of `dataSource`, whatever that DataSource's own
 * migration list: they run through a short-lived sibling DataSource (same connection options) with
 * the relay's migrations and history table (`usm_migrations`), under a session advisory lock.
 * Returns the names of the migrations it applied.
 */
export async function runRelayMigrations(dataSource: DataSource): Promise<string[]> {
  const sibling = new DataSource({
    ...dataSource.options,
    poolSize: 2,
    entities: [],
    subscribers: [],
    migrations: [...RELAY_MIGRATIONS],
    migrationsTableName: RELAY_MIGRATIONS_TABLE,
    migrationsRun: false,
    synchronize: false,
    dropSchema: false,
    logging: false,
  } as DataSourceOptions);
  try {
    await sibling.initialize();
    const lock = sibling.createQueryRunner();
    try {
      await lock.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
      try {
        const applied = await sibling.runMigrations({ transaction: 'each' });
        if (applied.length > 0) {
          new Logger('MessengerRelay').log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
        }
        return applied.map((m) => m.name);
      } finally {
        await lock.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
      }
    } finally {
      await lock.release();
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RelayError(RelayErrorCode.Database, M.migrationsFailed(reason));
  } finally {
    if (sibling.isInitialized) await sibling.destroy();
  }
}
