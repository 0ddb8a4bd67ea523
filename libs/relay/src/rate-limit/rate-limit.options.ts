/** A fixed-window limit: at most `points` per `durationSeconds` (the window starts at the first hit). */
export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

/** The kinds of request that are rate limited. */
export const RATE_LIMIT_BUCKETS = ['send', 'fetch', 'prekeyClaim', 'prekeyUpload', 'handshake'] as const;
export type RateLimitBucket = (typeof RATE_LIMIT_BUCKETS)[number];

/** One bucket's limits; `false` disables that dimension. */
export interface RateLimitBucketOptions {
  /** Per authenticated identity (address). */
  perIdentity?: RateLimitRule | false;
  /** Per network address (the socket's remote address). */
  perAddress?: RateLimitRule | false;
}

/** Rate limits (rate-limit.service.ts, rate-limit.guard.ts). */
export interface RelayRateLimitOptions {
  /**
   * Enforce rate limits at all (tests and benchmarks may turn them off).
   * @default true
   */
  enabled?: boolean;
  /**
   * Take the network address from the last X-Forwarded-For entry (exactly one trusted proxy hop)
   * instead of the socket's remote address.
   * @default false
   */
  trustProxy?: boolean;
  /**
   * Per-bucket limits, merged over the defaults bucket by bucket and dimension by dimension.
   * @default RELAY_DEFAULTS.rateLimits.buckets, tabled with their reasons in docs/relay.md, "Rate
   * limits" (a unit test keeps that table equal to the code)
   */
  buckets?: Partial<Record<RateLimitBucket, RateLimitBucketOptions>>;
}

/** `rateLimits` with every default filled in. */
export interface ResolvedRateLimitOptions {
  enabled: boolean;
  trustProxy: boolean;
  buckets: Record<RateLimitBucket, Required<RateLimitBucketOptions>>;
}
