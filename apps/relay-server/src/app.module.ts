/**
 * The sample relay: an ordinary Nest application that imports MessengerRelayModule, as an existing
 * backend would. Everything the relay needs comes from the environment (config.ts).
 */
import { Module, type DynamicModule } from '@nestjs/common';
import { MessengerRelayModule } from '@usm/relay';
import type { IdentityKeyPair } from '@usm/crypto';
import type { RelayServerConfig } from './config.js';
import { RELAY_IDENTITY, RelayInfoController } from './relay-info.controller.js';

export interface AppSettings {
  readonly config: RelayServerConfig;
  readonly databaseUrl: string;
  readonly identity: IdentityKeyPair;
}

@Module({})
export class AppModule {
  static forRoot({ config, databaseUrl, identity }: AppSettings): DynamicModule {
    return {
      module: AppModule,
      controllers: [RelayInfoController],
      providers: [{ provide: RELAY_IDENTITY, useValue: identity }],
      imports: [
        MessengerRelayModule.forRoot({
          identity,
          database: { url: databaseUrl },
          mail: { ttlMs: config.mailTtlMs },
          cleanup: { cron: config.cleanupCron, batchSize: config.cleanupBatchSize },
          rateLimits: { enabled: config.rateLimits, trustProxy: config.trustProxy },
          socket: { allowedOrigins: config.allowedOrigins },
        }),
      ],
    };
  }
}
