// One run of the relay's own cleanup (RelayCleanupService.runOnce) with the built relay package,
// as a node's cron tick runs it: an application context of MessengerRelayModule on DATABASE_URL
// (no HTTP, no socket.io server, the cron job off), defaults for batch size and batches per run
// unless CLEANUP_BATCH_SIZE / CLEANUP_MAX_BATCHES say otherwise. CLOCK_AHEAD_MS moves the relay
// clock of this run ahead, so the bench can insert rows that only this run sees as expired (the
// cron job of a relay node on the same database must not race it for them).
// Prints "cleanup started" just before the run and "cleanup done <json>" after it, where json is
// { ms, report } (report: rows deleted per table and statements issued).
//
// Run: DATABASE_URL=... RELAY_IDENTITY_FILE=... node bench/peers/cleanup-once.mjs
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Test } from '@nestjs/testing';
import { decodeIdentityKeyPair, ready } from '@usm/crypto';
import { MessengerRelayModule, RelayCleanupService, RelayClock } from '@usm/relay';

await ready();
const identity = decodeIdentityKeyPair(readFileSync(process.env.RELAY_IDENTITY_FILE));
const cleanup = { enabled: false };
if (process.env.CLEANUP_BATCH_SIZE) cleanup.batchSize = Number(process.env.CLEANUP_BATCH_SIZE);
if (process.env.CLEANUP_MAX_BATCHES) cleanup.maxBatchesPerRun = Number(process.env.CLEANUP_MAX_BATCHES);
const ahead = Number(process.env.CLOCK_AHEAD_MS ?? 0);
const moduleRef = await Test.createTestingModule({
  imports: [
    MessengerRelayModule.forRoot({
      identity,
      database: { url: process.env.DATABASE_URL, poolSize: 2 },
      cleanup,
      rateLimits: { enabled: false },
      socket: { adapter: 'none' },
      http: false,
    }),
  ],
})
  .overrideProvider(RelayClock)
  .useValue({ now: () => Date.now() + ahead })
  .compile();
moduleRef.useLogger(['error', 'warn']);
const app = await moduleRef.init();
const service = app.get(RelayCleanupService);
console.log('cleanup started');
const start = performance.now();
const report = await service.runOnce();
const ms = performance.now() - start;
console.log(`cleanup done ${JSON.stringify({ ms, report })}`);
await app.close();
