/**
 * Rate limits shared by every relay node: rate-limiter-flexible's RateLimiterPostgres on the
 * relay's pool and its `usm_rate_limits` table (created by the migrations, so the limiter runs
 * with `tableCreated: true` and never issues DDL; stale rows go with the cleanup job).
 *
 * Each bucket (RATE_LIMIT_BUCKETS) counts per identity and per network address, each a fixed
 * window of `points` per `durationSeconds`: a burst of `points`, then `points / durationSeconds` per
 * second sustained. Both dimensions must pass. The defaults are RELAY_DEFAULTS.rateLimits.buckets.
 */
import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { RelayDatabase, RelayDatabaseError } from '../database/relay-database.js';
import { RELAY_OPTIONS, TABLES } from '../relay.constants.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { RATE_LIMIT_BUCKETS, type RateLimitBucket } from './rate-limit.options.js';

/** Who a request is charged to. A dimension without a value is not checked. */
export interface RateLimitSubject {
  /** The authenticated identity's address, once the handshake completed. */
  identity?: string;
  /** The client's network address. */
  address?: string;
}

export type RateLimitDimension = 'identity' | 'address';

export type RateLimitDecision =
  | { allowed: true }
  | { allowed: false; bucket: RateLimitBucket; dimension: RateLimitDimension; retryAfterMs: number };

/** Longest key kept readable; longer subjects are hashed to fit the table's varchar(255) key. */
const MAX_PLAIN_KEY = 200;

/**
 * @example
 * const decision = await limiter.consume('send', { identity, address }, envelopes.length);
 * if (!decision.allowed) reply({ status: 'error', code: 'RATE_LIMITED', retryAfterMs: decision.retryAfterMs });
 * // or, throwing a RelayError with code RATE_LIMITED and retryAfterMs:
 * await limiter.enforce('prekeyClaim', { identity, address });
 */
@Injectable()
export class RelayRateLimiter {
  private readonly enabled: boolean;
  private readonly limiters = new Map<string, RateLimiterPostgres>();

  constructor(
    db: RelayDatabase,
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'rateLimits'>,
    private readonly metrics: RelayMetrics,
  ) {
    this.enabled = options.rateLimits.enabled;
    for (const bucket of RATE_LIMIT_BUCKETS) {
      const limits = options.rateLimits.buckets[bucket];
      for (const dimension of ['identity', 'address'] as const) {
        const rule = dimension === 'identity' ? limits.perIdentity : limits.perAddress;
        if (!rule) continue;
        this.limiters.set(
          `${bucket}:${dimension}`,
          new RateLimiterPostgres({
            storeClient: db.dataSource,
            storeType: 'typeorm',
            tableName: TABLES.rateLimits,
            tableCreated: true,
            clearExpiredByTimeout: false,
            keyPrefix: `usm:${bucket}:${dimension}`,
            points: rule.points,
            duration: rule.durationSeconds,
          }),
        );
      }
    }
  }

  /** Charges `cost` points to each known dimension of `subject`; says whether the request may go on. */
  async consume(bucket: RateLimitBucket, subject: RateLimitSubject, cost = 1): Promise<RateLimitDecision> {
    if (!this.enabled) return { allowed: true };
    for (const dimension of ['identity', 'address'] as const) {
      const key = subject[dimension];
      const limiter = this.limiters.get(`${bucket}:${dimension}`);
      if (!key || !limiter) continue;
      try {
        await limiter.consume(keyOf(key), cost);
      } catch (res) {
        if (res instanceof RateLimiterRes) {
          this.metrics.limited(bucket, dimension);
          return {
            allowed: false,
            bucket,
            dimension,
            retryAfterMs: Math.max(1, Math.ceil(res.msBeforeNext)),
          };
        }
        throw RelayDatabaseError.from(res);
      }
    }
    return { allowed: true };
  }

  /** Like `consume`, but throws RelayError(RATE_LIMITED) with `retryAfterMs` when refused. */
  async enforce(bucket: RateLimitBucket, subject: RateLimitSubject, cost = 1): Promise<void> {
    const decision = await this.consume(bucket, subject, cost);
    if (!decision.allowed) throw rateLimitedError(decision);
  }

  /** Forgets the subject's counters in a bucket (an operator lifting a limit). */
  async reset(bucket: RateLimitBucket, subject: RateLimitSubject): Promise<void> {
    for (const dimension of ['identity', 'address'] as const) {
      const key = subject[dimension];
      const limiter = this.limiters.get(`${bucket}:${dimension}`);
      if (!key || !limiter) continue;
      await limiter.delete(keyOf(key)).catch((err: unknown) => Promise.reject(RelayDatabaseError.from(err)));
    }
  }
}

/** The error a refused request leaves with. */
export function rateLimitedError(decision: Extract<RateLimitDecision, { allowed: false }>): RelayError {
  return new RelayError(
    RelayErrorCode.RateLimited,
    M.rateLimited(decision.bucket, decision.retryAfterMs),
    decision.retryAfterMs,
  );
}

function keyOf(subject: string): string {
  return subject.length <= MAX_PLAIN_KEY
    ? subject
    : `sha256:${createHash('sha256').update(subject).digest('hex')}`;
}
