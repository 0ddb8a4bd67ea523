import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { RelayDatabase } from '../database/relay-database.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

/**
 * A @nestjs/terminus health indicator that pings the relay's own DataSource (not the host's).
 *
 * @example
 * // in a host's own health controller
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.relayHealth.isHealthy()]); }
 */
@Injectable()
export class RelayHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly db: RelayDatabase,
    @Inject(RELAY_OPTIONS) private readonly options: Pick<ResolvedRelayOptions, 'health'>,
  ) {}

  /** Up when `SELECT 1` answers within `health.timeoutMs`. */
  isHealthy<const Key extends string = 'usm-relay-database'>(key: Key = 'usm-relay-database' as Key) {
    return this.health
      .check(key)
      .attempt(async () => {
        await this.db.query('SELECT 1');
      })
      .withTimeout(this.options.health.timeoutMs);
  }
}
