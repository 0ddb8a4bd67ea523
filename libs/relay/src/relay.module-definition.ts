import { ConfigurableModuleBuilder } from '@nestjs/common';
import { createRelayHttpController, type RelayHttpOptions } from './health/relay-http.controller.js';
import { RelayGateway, createRelayGateway } from './relay.gateway.js';
import type { RelayModuleOptions } from './relay.options.js';

/** Options that shape the module itself, given next to the options in forRoot and forRootAsync. */
export interface RelayModuleExtras {
  /**
   * Register the module globally, so every module can inject the relay's services.
   * @default false
   */
  isGlobal?: boolean;
  /**
   * Mount the relay's health and metrics routes at these paths, or nothing with `false`.
   * @default { healthPath: 'health', metricsPath: 'metrics' }
   */
  http?: RelayHttpOptions | false;
}

export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<RelayModuleOptions>({ moduleName: 'MessengerRelay' })
    .setClassMethodName('forRoot')
    .setExtras<RelayModuleExtras>({ isGlobal: false, http: {} }, (definition, extras) => {
      // A gateway class per module instance: it carries this instance's socket options.
      const gateway = createRelayGateway();
      return {
        ...definition,
        global: extras.isGlobal,
        controllers: extras.http === false ? [] : [createRelayHttpController(extras.http ?? {})],
        providers: [
          ...(definition.providers ?? []),
          gateway,
          { provide: RelayGateway, useExisting: gateway },
        ],
        exports: [...(definition.exports ?? []), RelayGateway],
      };
    })
    .build();
