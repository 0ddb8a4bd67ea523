/**
 * The drop-in proof inside the monorepo: the relay module boots next to a host's own TypeORM
 * connection and controllers, through forRoot and forRootAsync, on a real PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { Controller, Get, type INestApplication, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { usePostgres } from '../../../test/support/postgres.js';
import {
  HandshakeReplayStore,
  MessageStore,
  MessengerRelayModule,
  PrekeyDirectoryService,
  RELAY_DATA_SOURCE,
  RELAY_MESSAGES as M,
  RELAY_OPTIONS,
  RelayClock,
  RelayCleanupService,
  RelayError,
  RelayErrorCode,
  RelayRateLimiter,
  type ResolvedRelayOptions,
} from '../src/index.js';
import { ManualClock, RELAY_IDENTITY, address, messageId } from './fixtures.js';

@Controller()
class HostController {
  @Get('health')
  health() {
    return { host: 'own health route' };
  }
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return app.getUrl();
}

describe('MessengerRelayModule', () => {
  const pg = usePostgres();
  const hostTypeOrm = () =>
    TypeOrmModule.forRoot({ type: 'postgres', url: pg.url, entities: [], synchronize: false });

  it('forRoot: boots beside the host own TypeORM connection and serves the relay', async () => {
    const clock = new ManualClock();
    const moduleRef = await Test.createTestingModule({
      imports: [
        hostTypeOrm(),
        MessengerRelayModule.forRoot({
          identity: RELAY_IDENTITY,
          database: { url: pg.url },
          http: { healthPath: 'relay/health', metricsPath: 'relay/metrics' },
        }),
      ],
      controllers: [HostController],
    })
      .overrideProvider(RelayClock)
      .useValue(clock)
      .compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const url = await listen(app);
    try {
      const hostDs = app.get<DataSource>(getDataSourceToken());
      const relayDs = app.get<DataSource>(RELAY_DATA_SOURCE);
      expect(relayDs).not.toBe(hostDs);
      expect(hostDs.isInitialized && relayDs.isInitialized).toBe(true);

      const store = app.get<MessageStore>(MessageStore);
      const bob = address('bob');
      const id = messageId();
      const sent = await store.store(address('alice'), [
        { recipient: bob, messageId: id, envelope: new Uint8Array([1, 2]) },
      ]);
      expect(sent[0]?.status).toBe('stored');
      expect((await store.fetch(bob)).messages.map((m) => m.messageId)).toEqual([id]);
      // The injected clock reaches the store and the cleanup job.
      clock.advance(31 * 24 * 60 * 60 * 1000);
      expect(await app.get(RelayCleanupService).runOnce()).toMatchObject({ mail: 1 });

      expect(
        await app.get<HandshakeReplayStore>(HandshakeReplayStore).remember(randomBytes(32), clock.now() + 1),
      ).toBe(true);
      expect(await app.get(PrekeyDirectoryService).claim(address('nobody'))).toBeNull();
      expect((await app.get(RelayRateLimiter).consume('send', { identity: address('x') })).allowed).toBe(
        true,
      );

      // The host's /health stays the host's; the relay's routes are where the host put them.
      expect(await (await fetch(`${url}/health`)).json()).toEqual({ host: 'own health route' });
      const health = await fetch(`${url}/relay/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: 'ok',
        info: { 'usm-relay-database': { status: 'up' } },
      });
      const metrics = await fetch(`${url}/relay/metrics`);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      expect(await metrics.text()).toMatch(/usm_relay_messages_total\{event="stored"\} 1/);
    } finally {
      await app.close();
    }
    expect(app.get<DataSource>(RELAY_DATA_SOURCE).isInitialized).toBe(false);
  });

  it('forRootAsync: options from ConfigService, defaults merged exactly as forRoot merges them, no routes with http: false', async () => {
    const syncRef = await Test.createTestingModule({
      imports: [
        MessengerRelayModule.forRoot({
          identity: RELAY_IDENTITY,
          database: { url: pg.url },
          mail: { quotaPerRecipient: 7 },
        }),
      ],
    }).compile();
    const syncOptions = syncRef.get<ResolvedRelayOptions>(RELAY_OPTIONS);
    await syncRef.close();

    const moduleRef = await Test.createTestingModule({
      imports: [
        hostTypeOrm(),
        MessengerRelayModule.forRootAsync({
          imports: [
            ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ RELAY_DB: pg.url, QUOTA: 7 })] }),
          ],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            identity: RELAY_IDENTITY,
            database: { url: config.getOrThrow<string>('RELAY_DB') },
            mail: { quotaPerRecipient: config.getOrThrow<number>('QUOTA') },
          }),
          http: false,
        }),
      ],
      controllers: [HostController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const url = await listen(app);
    try {
      expect(app.get<ResolvedRelayOptions>(RELAY_OPTIONS)).toEqual(syncOptions);
      expect((await fetch(`${url}/metrics`)).status).toBe(404);
      expect(await (await fetch(`${url}/health`)).json()).toEqual({ host: 'own health route' });
    } finally {
      await app.close();
    }
  });

  it('shares a host DataSource when given one (also injected from TypeOrmModule), and leaves it open', async () => {
    const own = await pg.dataSource();
    const plain = await Test.createTestingModule({
      imports: [
        MessengerRelayModule.forRoot({
          identity: RELAY_IDENTITY,
          database: { dataSource: own },
          http: false,
        }),
      ],
    }).compile();
    await plain.init();
    expect(plain.get(RELAY_DATA_SOURCE)).toBe(own);
    expect(await plain.get<MessageStore>(MessageStore).pendingCount(address('bob'))).toBe(0);
    await plain.close();
    expect(own.isInitialized).toBe(true);

    @Module({})
    class Empty {}
    const moduleRef = await Test.createTestingModule({
      imports: [
        hostTypeOrm(),
        MessengerRelayModule.forRootAsync({
          imports: [Empty],
          inject: [getDataSourceToken()],
          useFactory: (dataSource: DataSource) => ({ identity: RELAY_IDENTITY, database: { dataSource } }),
          isGlobal: true,
        }),
      ],
    }).compile();
    expect(moduleRef.get(RELAY_DATA_SOURCE)).toBe(moduleRef.get(getDataSourceToken()));
    await moduleRef.close();
  });

  it('stops start-up on invalid options with the message that says how to fix them', async () => {
    const boot = (options: Parameters<typeof MessengerRelayModule.forRoot>[0]) =>
      Test.createTestingModule({ imports: [MessengerRelayModule.forRoot(options)] }).compile();
    await expect(
      boot({ identity: RELAY_IDENTITY, database: { url: 'mysql://root@localhost/db' } }),
    ).rejects.toThrow(new RelayError(RelayErrorCode.InvalidOptions, M.badDatabaseUrl()));
    await expect(
      boot({ identity: RELAY_IDENTITY, database: { url: pg.url }, cleanup: { cron: 'every minute' } }),
    ).rejects.toThrow(M.badCron('cleanup.cron', 'every minute'));
    const err = await boot({
      identity: RELAY_IDENTITY,
      database: { url: `postgres://nobody:wrong@127.0.0.1:1/x${randomBytes(2).toString('hex')}` },
    })
      .then(() => null)
      .catch((e: unknown) => e);
    expect(RelayError.is(err, RelayErrorCode.Database)).toBe(true);
    expect((err as Error).message).not.toContain('wrong');
  });
});
