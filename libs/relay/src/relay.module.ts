import { Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { DataSource } from 'typeorm';
import { RelayClusterService } from './cluster/cluster.service.js';
import { MailNoticeService } from './cluster/mail-notices.service.js';
import { RelayHandshakeService } from './handshake/handshake.service.js';
import { MailPushService } from './mail/mail-push.service.js';
import { RelayMailService } from './mail/mail.service.js';
import { RelayPrekeysService } from './prekeys/prekeys.service.js';
import { RelayRequests } from './socket/relay-requests.service.js';
import { RelaySockets } from './socket/relay-server.js';
import { RelayCleanupService } from './cleanup/cleanup.service.js';
import { MessageStore } from './mail/message-store.interface.js';
import { PostgresMessageStore } from './mail/message-store.service.js';
import { RelayMetrics } from './metrics/metrics.service.js';
import { PrekeyDirectoryService } from './prekeys/prekey-directory.service.js';
import { PushFlowControl } from './push/push-flow-control.js';
import { RelayRateLimitGuard } from './rate-limit/rate-limit.guard.js';
import { RelayRateLimiter } from './rate-limit/rate-limit.service.js';
import { RelayClock, systemClock } from './relay-clock.js';
import { openRelayDataSource, RelayDatabase } from './database/relay-database.js';
import { RelayHealthIndicator } from './health/relay-health.indicator.js';
import { RELAY_DATA_SOURCE, RELAY_OPTIONS } from './relay.constants.js';
import { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } from './relay.module-definition.js';
import { resolveRelayOptions } from './relay.options.js';
import { HandshakeReplayStore, PostgresReplayStore } from './handshake/replay-store.service.js';

/** The opened DataSource and whether the relay owns it (internal). */
const RELAY_DATA_SOURCE_HANDLE = Symbol('RELAY_DATA_SOURCE_HANDLE');

/** Destroys the relay's DataSource on shutdown when the relay opened it; a host's stays open. */
@Injectable()
class RelayDataSourceCloser implements OnApplicationShutdown {
  constructor(
    @Inject(RELAY_DATA_SOURCE_HANDLE) private readonly handle: { dataSource: DataSource; owned: boolean },
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.handle.owned && this.handle.dataSource.isInitialized) await this.handle.dataSource.destroy();
  }
}

/**
 * The Ultra-Secure Messenger relay as a NestJS module: an expiring PostgreSQL ciphertext store
 * with cron cleanup, a prekey directory, a shared handshake replay store, rate limits, health and
 * metrics, on a DataSource of its own (named 'usm-relay') beside any the host has.
 *
 * @example
 * @Module({
 *   imports: [
 *     TypeOrmModule.forRoot({ ... }),                 // the host's own connection, untouched
 *     MessengerRelayModule.forRootAsync({
 *       imports: [ConfigModule],
 *       inject: [ConfigService],
 *       useFactory: (config: ConfigService) => ({ database: { url: config.getOrThrow('DATABASE_URL') } }),
 *       http: { healthPath: 'relay/health', metricsPath: 'relay/metrics' },
 *     }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({
  imports: [TerminusModule],
  providers: [
    { provide: RELAY_OPTIONS, useFactory: resolveRelayOptions, inject: [MODULE_OPTIONS_TOKEN] },
    { provide: RelayClock, useValue: systemClock },
    { provide: RELAY_DATA_SOURCE_HANDLE, useFactory: openRelayDataSource, inject: [RELAY_OPTIONS] },
    {
      provide: RELAY_DATA_SOURCE,
      useFactory: (handle: { dataSource: DataSource }) => handle.dataSource,
      inject: [RELAY_DATA_SOURCE_HANDLE],
    },
    {
      provide: RelayDatabase,
      useFactory: (ds: DataSource) => new RelayDatabase(ds),
      inject: [RELAY_DATA_SOURCE],
    },
    RelayDataSourceCloser,
    RelayMetrics,
    RelaySockets,
    RelayRequests,
    PushFlowControl,
    { provide: MessageStore, useClass: PostgresMessageStore },
    MailPushService,
    MailNoticeService,
    RelayMailService,
    RelayClusterService,
    PrekeyDirectoryService,
    RelayPrekeysService,
    { provide: HandshakeReplayStore, useClass: PostgresReplayStore },
    RelayHandshakeService,
    RelayRateLimiter,
    RelayRateLimitGuard,
    RelayCleanupService,
    RelayHealthIndicator,
  ],
  exports: [
    RELAY_OPTIONS,
    RelayClock,
    RELAY_DATA_SOURCE,
    RelayDatabase,
    RelayMetrics,
    MessageStore,
    PrekeyDirectoryService,
    HandshakeReplayStore,
    RelayRateLimiter,
    RelayRateLimitGuard,
    RelayCleanupService,
    RelayHealthIndicator,
  ],
})
export class MessengerRelayModule extends ConfigurableModuleClass {}
