/**
 * A relay node in the test's own process: MessengerRelayModule in a Nest app listening on
 * loopback, on the suite's PostgreSQL, with cleanup and rate limits off (the end-to-end suites
 * exercise delivery, not those). For the built sample app as a child process, see relay-app.ts.
 */
import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { IdentityKeyPair } from '@usm/crypto';
import { MessengerRelayModule } from '@usm/relay';

export interface InProcessRelay {
  readonly app: INestApplication;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
}

export async function startInProcessRelay(options: {
  databaseUrl: string;
  identity: IdentityKeyPair;
  /** 0 (default): any free port; a port: e.g. to restart a node where it was. */
  port?: number;
  /** Nest's logger for the app; off by default. */
  logger?: LoggerService;
  /** The module's HTTP routes (health, metrics); off by default. */
  http?: boolean;
}): Promise<InProcessRelay> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      MessengerRelayModule.forRoot({
        identity: options.identity,
        database: { url: options.databaseUrl },
        cleanup: { enabled: false },
        rateLimits: { enabled: false },
        ...(options.http ? {} : { http: false as const }),
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: options.logger ?? false });
  if (options.logger) app.useLogger(options.logger);
  await app.listen(options.port ?? 0, '127.0.0.1');
  const port = Number(new URL((await app.getUrl()).replace('[::1]', '127.0.0.1')).port);
  return { app, port, url: `http://127.0.0.1:${port}` };
}
