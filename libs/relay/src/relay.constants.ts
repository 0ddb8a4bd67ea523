import { getDataSourceToken } from '@nestjs/typeorm';

/**
 * Name of the relay's own TypeORM DataSource. A host keeps its own default connection; the relay
 * never touches it. `@InjectDataSource(RELAY_CONNECTION_NAME)` reaches the relay's one.
 */
export const RELAY_CONNECTION_NAME = 'usm-relay';

/** DI token of the relay's DataSource (the same token @nestjs/typeorm would use for that name). */
export const RELAY_DATA_SOURCE = getDataSourceToken(RELAY_CONNECTION_NAME) as string;

/** DI token of the validated options with every default filled in (`ResolvedRelayOptions`). */
export const RELAY_OPTIONS = Symbol('RELAY_OPTIONS');

/** The relay's migration history table, apart from any table a host's own migrations use. */
export const RELAY_MIGRATIONS_TABLE = 'usm_migrations';

/** Name under which the cleanup cron job is registered in @nestjs/schedule's SchedulerRegistry. */
export const RELAY_CLEANUP_JOB = 'usm-relay-cleanup';

/** Tables, as the migrations create them. */
export const TABLES = {
  mail: 'usm_mail',
  prekeys: 'usm_prekeys',
  oneTimePrekeys: 'usm_one_time_prekeys',
  replayNonces: 'usm_replay_nonces',
  rateLimits: 'usm_rate_limits',
} as const;

/** Length of a message id: 128 random bits, the protocol's own constant. */
export { MESSAGE_ID_BYTES } from '@usm/protocol';
