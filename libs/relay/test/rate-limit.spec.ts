import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import { RelayMetrics } from '../src/metrics/metrics.service.js';
import { RelayRateLimit, RelayRateLimitGuard } from '../src/rate-limit/rate-limit.guard.js';
import { RelayRateLimiter } from '../src/rate-limit/rate-limit.service.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import { RelayError, RelayErrorCode } from '../src/relay.errors.js';
import { RELAY_MESSAGES as M } from '../src/relay.messages.js';
import { options } from './fixtures.js';
import { randomBytes } from 'node:crypto';

const unique = (name: string) => `${name}-${randomBytes(6).toString('hex')}`;

describe('RelayRateLimiter on PostgreSQL', () => {
  const pg = usePostgres();
  let nodeA: RelayRateLimiter;
  let nodeB: RelayRateLimiter;
  let opts: ReturnType<typeof options>;
  let metricsA: RelayMetrics;
  let metricsB: RelayMetrics;

  beforeAll(async () => {
    const [a, b] = [await pg.dataSource(), await pg.dataSource()];
    await runMigrations(a);
    opts = options(pg.url, {
      rateLimits: {
        buckets: {
          send: {
            perIdentity: { points: 5, durationSeconds: 60 },
            perAddress: { points: 8, durationSeconds: 60 },
          },
          handshake: { perIdentity: false },
        },
      },
    });
    metricsA = new RelayMetrics(opts);
    metricsB = new RelayMetrics(opts);
    nodeA = new RelayRateLimiter(new RelayDatabase(a), opts, metricsA);
    nodeB = new RelayRateLimiter(new RelayDatabase(b), opts, metricsB);
  });

  it('shares one identity counter between two limiter instances (two nodes) on one database', async () => {
    const identity = unique('alice');
    for (let i = 0; i < 3; i++) expect(await nodeA.consume('send', { identity })).toEqual({ allowed: true });
    expect(await nodeB.consume('send', { identity }, 2)).toEqual({ allowed: true });
    const refused = await nodeB.consume('send', { identity });
    expect(refused).toMatchObject({ allowed: false, bucket: 'send', dimension: 'identity' });
    const retry = refused.allowed ? 0 : refused.retryAfterMs;
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60_000);
    expect((await nodeA.consume('send', { identity })).allowed).toBe(false);
    // Another identity has its own counter.
    expect((await nodeA.consume('send', { identity: unique('bob') })).allowed).toBe(true);
  });

  it('limits a network address across identities, and enforce() throws RATE_LIMITED with retryAfterMs', async () => {
    const address = `10.0.0.${Math.floor(Math.random() * 250)}-${unique('ip')}`;
    for (let i = 0; i < 8; i++) await nodeA.enforce('send', { identity: unique(`u${i}`), address });
    const err = await nodeB.enforce('send', { identity: unique('fresh'), address }).catch((e: unknown) => e);
    expect(RelayError.is(err, RelayErrorCode.RateLimited)).toBe(true);
    const e = err as RelayError;
    expect(e.retryAfterMs).toBeGreaterThan(0);
    expect(e.message).toBe(M.rateLimited('send', e.retryAfterMs as number));
    expect(await metricsA.metrics()).toMatch(
      /usm_relay_rate_limited_total\{bucket="send",dimension="identity"\} [1-9]/,
    );
    expect(await metricsB.metrics()).toMatch(
      /usm_relay_rate_limited_total\{bucket="send",dimension="address"\} 1/,
    );
  });

  it('a disabled dimension is not counted; reset lifts a limit', async () => {
    const identity = unique('carol');
    for (let i = 0; i < 50; i++) expect((await nodeA.consume('handshake', { identity })).allowed).toBe(true);
    const dave = unique('dave');
    await nodeA.consume('send', { identity: dave }, 5);
    expect((await nodeA.consume('send', { identity: dave })).allowed).toBe(false);
    await nodeB.reset('send', { identity: dave });
    expect((await nodeA.consume('send', { identity: dave })).allowed).toBe(true);
  });

  describe('RelayRateLimitGuard', () => {
    class Handlers {
      @RelayRateLimit('send')
      send(): void {}
      free(): void {}
    }
    const wsContext = (handler: keyof Handlers, socket: object, data: unknown): ExecutionContext =>
      ({
        getType: () => 'ws',
        getHandler: () => Handlers.prototype[handler],
        getClass: () => Handlers,
        switchToWs: () => ({ getClient: () => socket, getData: () => data }),
      }) as unknown as ExecutionContext;

    it('charges the socket identity one point per envelope and refuses past the limit', async () => {
      const guard = new RelayRateLimitGuard(nodeA, new Reflector(), opts);
      const socket = { data: { address: unique('erin') }, handshake: { address: unique('ip') } };
      expect(await guard.canActivate(wsContext('send', socket, { envelopes: [1, 2, 3] }))).toBe(true);
      expect(await guard.canActivate(wsContext('send', socket, { envelopes: [1, 2] }))).toBe(true);
      const err = await guard
        .canActivate(wsContext('send', socket, { envelopes: [1] }))
        .catch((e: unknown) => e);
      expect(RelayError.is(err, RelayErrorCode.RateLimited)).toBe(true);
      // Handlers without @RelayRateLimit are not charged.
      expect(await guard.canActivate(wsContext('free', socket, {}))).toBe(true);
    });

    it('lets a host override its steps (getTracker)', async () => {
      const shared = unique('tenant');
      class TenantGuard extends RelayRateLimitGuard {
        protected override getTracker() {
          return { identity: shared };
        }
      }
      const guard = new TenantGuard(nodeB, new Reflector(), opts);
      const ctx = (n: number) =>
        wsContext('send', { data: { address: unique('x') } }, { envelopes: Array(n) });
      expect(await guard.canActivate(ctx(5))).toBe(true);
      await expect(guard.canActivate(ctx(1))).rejects.toThrow(RelayError);
    });
  });
});
