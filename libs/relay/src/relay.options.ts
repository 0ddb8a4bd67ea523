/**
 * The relay module's options, composed of each feature's named options type (`RelayMailOptions` in
 * mail/mail.options.ts, ...). Every option carries its `@default`; `RELAY_DEFAULTS` holds every
 * default and `resolveRelayOptions` merges and validates them, in one place, for forRoot and
 * forRootAsync alike, so an invalid option stops start-up with a message from relay.messages.ts
 * that says how to fix it.
 *
 * Limits of the wire protocol are @usm/protocol's constants (limits.ts): an option of the same
 * meaning defaults to that constant and may only lower it.
 */
import { Logger } from '@nestjs/common';
import type { IdentityKeyPair } from '@usm/crypto';
import {
  DEFAULT_REPLAY_RETENTION_MS,
  DEFAULT_SKEW_WINDOW_MS,
  LOW_PREKEY_THRESHOLD,
  MAX_ACKS_PER_CALL,
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPES_PER_SEND,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_RECORD_BYTES,
} from '@usm/protocol';
import { validateCronExpression } from 'cron';
import type { RelayCleanupOptions } from './cleanup/cleanup.options.js';
import type {
  RelayDatabaseDataSourceOptions,
  RelayDatabaseOptions,
  RelayDatabaseUrlOptions,
  ResolvedRelayDatabaseOptions,
} from './database/database.options.js';
import type { RelayHandshakeOptions } from './handshake/handshake.options.js';
import type { RelayHealthOptions } from './health/health.options.js';
import type { DeprecatedMailOption, RelayMailOptions, ResolvedMailOptions } from './mail/mail.options.js';
import type { RelayMetricsOptions } from './metrics/metrics.options.js';
import type { RelayPrekeyOptions } from './prekeys/prekeys.options.js';
import {
  RATE_LIMIT_BUCKETS,
  type RateLimitRule,
  type RelayRateLimitOptions,
  type ResolvedRateLimitOptions,
} from './rate-limit/rate-limit.options.js';
import { RelayError, RelayErrorCode } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';
import type { RelaySocketOptions } from './socket/socket.options.js';

export type {
  RelayCleanupOptions,
  RelayDatabaseDataSourceOptions,
  RelayDatabaseOptions,
  RelayDatabaseUrlOptions,
  RelayHandshakeOptions,
  RelayHealthOptions,
  RelayMailOptions,
  RelayMetricsOptions,
  RelayPrekeyOptions,
  RelayRateLimitOptions,
  RelaySocketOptions,
};

export interface RelayModuleOptions {
  /**
   * The relay's persistent Ed25519 identity, which clients pin (from @usm/crypto:
   * `generateIdentityKeyPair()` once, then `decodeIdentityKeyPair(saved)` at every start).
   * Required: a new key per start would make every pinned client refuse the relay.
   */
  identity: IdentityKeyPair;
  /** Where the relay keeps all shared state (mail, prekeys, rate-limit counters, replay nonces). */
  database: RelayDatabaseOptions;
  handshake?: RelayHandshakeOptions;
  socket?: RelaySocketOptions;
  /** Mail, and push flow control's caps (`pushBacklogBytes`, `pushBacklogItems`). */
  mail?: RelayMailOptions;
  cleanup?: RelayCleanupOptions;
  prekeys?: RelayPrekeyOptions;
  rateLimits?: RelayRateLimitOptions;
  metrics?: RelayMetricsOptions;
  health?: RelayHealthOptions;
}

/** Options with every default filled in, as services receive them (token RELAY_OPTIONS). */
export interface ResolvedRelayOptions {
  identity: IdentityKeyPair;
  handshake: Required<RelayHandshakeOptions>;
  socket: Required<RelaySocketOptions>;
  database: ResolvedRelayDatabaseOptions;
  mail: ResolvedMailOptions;
  cleanup: Required<RelayCleanupOptions>;
  prekeys: Required<RelayPrekeyOptions>;
  rateLimits: ResolvedRateLimitOptions;
  metrics: Required<RelayMetricsOptions>;
  health: Required<RelayHealthOptions>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The defaults, in one place. */
export const RELAY_DEFAULTS = {
  handshake: {
    skewWindowMs: DEFAULT_SKEW_WINDOW_MS,
    replayRetentionMs: DEFAULT_REPLAY_RETENTION_MS,
    timeoutMs: 10_000,
  },
  socket: { path: '/socket.io', allowedOrigins: [] as string[], adapter: 'postgres' as 'postgres' | 'none' },
  database: { poolSize: 10, migrationsRun: true, ssl: false },
  mail: {
    ttlMs: 30 * DAY_MS,
    quotaPerRecipient: 10_000,
    maxEnvelopeBytes: MAX_ENVELOPE_BYTES,
    maxEnvelopesPerSend: MAX_ENVELOPES_PER_SEND,
    maxFetchPage: MAX_FETCH_PAGE,
    maxAcksPerCall: MAX_ACKS_PER_CALL,
    maxNoticeCursors: 100,
    maxAddressLength: 256,
    pushBacklogBytes: 2 * MAX_FETCH_PAGE_BYTES,
    pushBacklogItems: 256,
  },
  cleanup: { enabled: true, cron: '0 * * * * *', batchSize: 5_000, maxBatchesPerRun: 200 },
  prekeys: {
    maxOneTimePrekeysPerUpload: MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
    maxStoredOneTimePrekeys: 1_000,
    lowWaterMark: LOW_PREKEY_THRESHOLD,
    maxKeyBytes: MAX_PREKEY_RECORD_BYTES,
  },
  rateLimits: {
    enabled: true,
    trustProxy: false,
    // docs/relay.md, "Rate limits", tables these with their reasons; rate-limit.options.spec.ts
    // checks that table against this object.
    buckets: {
      send: {
        perIdentity: { points: 100, durationSeconds: 5 },
        perAddress: { points: 500, durationSeconds: 5 },
      },
      fetch: {
        perIdentity: { points: 600, durationSeconds: 60 },
        perAddress: { points: 3_000, durationSeconds: 60 },
      },
      prekeyClaim: {
        perIdentity: { points: 30, durationSeconds: 60 },
        perAddress: { points: 120, durationSeconds: 60 },
      },
      prekeyUpload: {
        perIdentity: { points: 6, durationSeconds: 600 },
        perAddress: { points: 30, durationSeconds: 600 },
      },
      handshake: {
        perIdentity: { points: 10, durationSeconds: 60 },
        perAddress: { points: 30, durationSeconds: 60 },
      },
    },
  },
  metrics: { prefix: 'usm_relay_', defaultMetrics: false },
  health: { timeoutMs: 1_000 },
} as const satisfies Omit<ResolvedRelayOptions, 'database' | 'identity'> & { database: object };

const MAX_INT = Number.MAX_SAFE_INTEGER;

function int(path: string, value: unknown, min: number, max = MAX_INT): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RelayError(RelayErrorCode.InvalidOptions, M.notAnInteger(path, min, max, value));
  }
  return value;
}

function bool(path: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new RelayError(RelayErrorCode.InvalidOptions, M.notABoolean(path, value));
  return value;
}

function rule(path: string, value: unknown): RateLimitRule | false {
  if (value === false) return false;
  const r = value as Partial<RateLimitRule> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    !Number.isSafeInteger(r.points) ||
    !Number.isSafeInteger(r.durationSeconds) ||
    (r.points ?? 0) < 1 ||
    (r.durationSeconds ?? 0) < 1
  ) {
    throw new RelayError(RelayErrorCode.InvalidOptions, M.badRateLimitRule(path));
  }
  return { points: r.points as number, durationSeconds: r.durationSeconds as number };
}

function invalid(message: string): never {
  throw new RelayError(RelayErrorCode.InvalidOptions, message);
}

/** Structural check: a pair from @usm/crypto (another copy of the package may be installed). */
function resolveIdentity(identity: unknown): IdentityKeyPair {
  const pair = identity as { publicKey?: unknown; secretKey?: unknown } | null | undefined;
  const pub = pair?.publicKey as { encode?: unknown; fingerprint?: unknown } | undefined;
  if (
    typeof pair !== 'object' ||
    pair === null ||
    typeof pub !== 'object' ||
    pub === null ||
    typeof pub.encode !== 'function' ||
    typeof pub.fingerprint !== 'function' ||
    typeof pair.secretKey !== 'object' ||
    pair.secretKey === null
  ) {
    invalid(M.badIdentity());
  }
  return identity as IdentityKeyPair;
}

function resolveSocket(socket: RelayModuleOptions['socket']): ResolvedRelayOptions['socket'] {
  const D = RELAY_DEFAULTS.socket;
  const given = socket ?? {};
  const path = given.path ?? D.path;
  if (typeof path !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(path) || path.length > 200) {
    invalid(M.badSocketPath(String(path)));
  }
  const origins = given.allowedOrigins ?? D.allowedOrigins;
  if (!Array.isArray(origins)) invalid(M.badOrigins(-1));
  origins.forEach((o, i) => {
    if (typeof o !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^\s/]+$/i.test(o)) invalid(M.badOrigins(i));
  });
  const adapter = given.adapter ?? D.adapter;
  if (adapter !== 'postgres' && adapter !== 'none') invalid(M.badAdapter(String(adapter)));
  return { path, allowedOrigins: [...origins], adapter };
}

function resolveDatabase(db: RelayDatabaseOptions | undefined): ResolvedRelayOptions['database'] {
  if (typeof db !== 'object' || db === null) invalid(M.missingDatabase());
  const hasUrl = 'url' in db && db.url !== undefined;
  const hasDataSource = 'dataSource' in db && db.dataSource !== undefined;
  if (hasUrl && hasDataSource) invalid(M.ambiguousDatabase());
  const migrationsRun = bool(
    'database.migrationsRun',
    db.migrationsRun ?? RELAY_DEFAULTS.database.migrationsRun,
  );
  if (hasDataSource) {
    const ds = (db as RelayDatabaseDataSourceOptions).dataSource;
    if (ds.options?.type !== 'postgres') invalid(M.notPostgres(String(ds.options?.type)));
    return { dataSource: ds, migrationsRun };
  }
  if (!hasUrl) invalid(M.missingDatabase());
  const u = db as RelayDatabaseUrlOptions;
  if (typeof u.url !== 'string' || !/^postgres(ql)?:\/\/\S+$/.test(u.url)) invalid(M.badDatabaseUrl());
  return {
    url: u.url,
    poolSize: int('database.poolSize', u.poolSize ?? RELAY_DEFAULTS.database.poolSize, 2, 1_000),
    migrationsRun,
    ssl: u.ssl ?? RELAY_DEFAULTS.database.ssl,
  };
}

/** The most `mail.maxNoticeCursors` may be: a store read of that many rows stays one short query. */
const MAX_NOTICE_CURSORS = 10_000;

/** The range the deprecated `mail.maxBatch` and `mail.maxPage` always had: 1 to this. */
const DEPRECATED_MAIL_LIMIT_MAX = 10_000;

/**
 * `mail` merged over its defaults, with the deprecated names read as the options that replaced
 * them: `maxBatch` as `maxEnvelopesPerSend`, `maxPage` as `maxFetchPage`, `maxAcksPerCall` and
 * `maxNoticeCursors` (each only when not set itself, lowered to its cap). A deprecated name is
 * checked against the range it always had, so a configuration that started before still starts,
 * and a warning names its replacement.
 */
function resolveDeprecatedMail(given: RelayMailOptions = {}): Omit<RelayMailOptions, DeprecatedMailOption> {
  const { maxBatch, maxPage, ...mail } = { ...given };
  const merged: Omit<RelayMailOptions, DeprecatedMailOption> = { ...RELAY_DEFAULTS.mail, ...mail };
  const warn = (name: DeprecatedMailOption, replacements: readonly string[]) =>
    new Logger('MessengerRelay').warn(
      M.deprecatedOption(
        `mail.${name}`,
        replacements.map((r) => `mail.${r}`),
      ),
    );
  if (maxBatch !== undefined) {
    const value = int('mail.maxBatch', maxBatch, 1, DEPRECATED_MAIL_LIMIT_MAX);
    merged.maxEnvelopesPerSend = mail.maxEnvelopesPerSend ?? Math.min(value, MAX_ENVELOPES_PER_SEND);
    warn('maxBatch', ['maxEnvelopesPerSend']);
  }
  if (maxPage !== undefined) {
    const value = int('mail.maxPage', maxPage, 1, DEPRECATED_MAIL_LIMIT_MAX);
    merged.maxFetchPage = mail.maxFetchPage ?? Math.min(value, MAX_FETCH_PAGE);
    merged.maxAcksPerCall = mail.maxAcksPerCall ?? Math.min(value, MAX_ACKS_PER_CALL);
    merged.maxNoticeCursors = mail.maxNoticeCursors ?? value;
    warn('maxPage', ['maxFetchPage', 'maxAcksPerCall', 'maxNoticeCursors']);
  }
  return merged;
}

/**
 * Merges the defaults over `options` and validates every field. Throws a RelayError with code
 * INVALID_OPTIONS and a message naming the option and the fix.
 */
export function resolveRelayOptions(options: RelayModuleOptions): ResolvedRelayOptions {
  if (typeof options !== 'object' || options === null) invalid(M.missingDatabase());
  const D = RELAY_DEFAULTS;
  const mail = resolveDeprecatedMail(options.mail);
  const cleanup = { ...D.cleanup, ...options.cleanup };
  const prekeys = { ...D.prekeys, ...options.prekeys };
  const rl = options.rateLimits ?? {};
  const metrics = { ...D.metrics, ...options.metrics };
  const health = { ...D.health, ...options.health };

  for (const name of Object.keys(rl.buckets ?? {})) {
    if (!(RATE_LIMIT_BUCKETS as readonly string[]).includes(name))
      invalid(M.unknownBucket(name, RATE_LIMIT_BUCKETS));
  }
  const buckets = {} as ResolvedRelayOptions['rateLimits']['buckets'];
  for (const name of RATE_LIMIT_BUCKETS) {
    const given = rl.buckets?.[name] ?? {};
    const def = D.rateLimits.buckets[name];
    buckets[name] = {
      perIdentity: rule(`rateLimits.buckets.${name}.perIdentity`, given.perIdentity ?? def.perIdentity),
      perAddress: rule(`rateLimits.buckets.${name}.perAddress`, given.perAddress ?? def.perAddress),
    };
  }

  if (typeof cleanup.cron !== 'string' || cleanup.cron.trim() === '')
    invalid(M.notAString('cleanup.cron', cleanup.cron));
  if (!validateCronExpression(cleanup.cron).valid) invalid(M.badCron('cleanup.cron', cleanup.cron));
  if (typeof metrics.prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metrics.prefix)) {
    invalid(M.badPrefix(String(metrics.prefix)));
  }

  const handshake = { ...D.handshake, ...options.handshake };
  const resolved: ResolvedRelayOptions = {
    database: resolveDatabase(options.database),
    identity: resolveIdentity(options.identity),
    handshake: {
      skewWindowMs: int('handshake.skewWindowMs', handshake.skewWindowMs, 1_000, 24 * 60 * 60 * 1000),
      replayRetentionMs: int(
        'handshake.replayRetentionMs',
        handshake.replayRetentionMs,
        1_000,
        7 * 24 * 60 * 60 * 1000,
      ),
      timeoutMs: int('handshake.timeoutMs', handshake.timeoutMs, 50, 10 * 60 * 1000),
    },
    socket: resolveSocket(options.socket),
    mail: {
      ttlMs: int('mail.ttlMs', mail.ttlMs, 1_000),
      quotaPerRecipient: int('mail.quotaPerRecipient', mail.quotaPerRecipient, 1),
      maxEnvelopeBytes: int('mail.maxEnvelopeBytes', mail.maxEnvelopeBytes, 1, MAX_ENVELOPE_BYTES),
      maxEnvelopesPerSend: int(
        'mail.maxEnvelopesPerSend',
        mail.maxEnvelopesPerSend,
        1,
        MAX_ENVELOPES_PER_SEND,
      ),
      maxFetchPage: int('mail.maxFetchPage', mail.maxFetchPage, 1, MAX_FETCH_PAGE),
      maxAcksPerCall: int('mail.maxAcksPerCall', mail.maxAcksPerCall, 1, MAX_ACKS_PER_CALL),
      maxNoticeCursors: int('mail.maxNoticeCursors', mail.maxNoticeCursors, 1, MAX_NOTICE_CURSORS),
      maxAddressLength: int('mail.maxAddressLength', mail.maxAddressLength, 1, 4_096),
      pushBacklogBytes: int('mail.pushBacklogBytes', mail.pushBacklogBytes, 1, 1024 * 1024 * 1024),
      pushBacklogItems: int('mail.pushBacklogItems', mail.pushBacklogItems, 1, 1_000_000),
    },
    cleanup: {
      enabled: bool('cleanup.enabled', cleanup.enabled),
      cron: cleanup.cron,
      batchSize: int('cleanup.batchSize', cleanup.batchSize, 1, 1_000_000),
      maxBatchesPerRun: int('cleanup.maxBatchesPerRun', cleanup.maxBatchesPerRun, 1),
    },
    prekeys: {
      maxOneTimePrekeysPerUpload: int(
        'prekeys.maxOneTimePrekeysPerUpload',
        prekeys.maxOneTimePrekeysPerUpload,
        1,
        MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
      ),
      maxStoredOneTimePrekeys: int('prekeys.maxStoredOneTimePrekeys', prekeys.maxStoredOneTimePrekeys, 1),
      lowWaterMark: int('prekeys.lowWaterMark', prekeys.lowWaterMark, 0),
      maxKeyBytes: int('prekeys.maxKeyBytes', prekeys.maxKeyBytes, 32, 1024 * 1024),
    },
    rateLimits: {
      enabled: bool('rateLimits.enabled', rl.enabled ?? D.rateLimits.enabled),
      trustProxy: bool('rateLimits.trustProxy', rl.trustProxy ?? D.rateLimits.trustProxy),
      buckets,
    },
    metrics: {
      prefix: metrics.prefix,
      defaultMetrics: bool('metrics.defaultMetrics', metrics.defaultMetrics),
    },
    health: { timeoutMs: int('health.timeoutMs', health.timeoutMs, 1, 60_000) },
  };
  if (resolved.prekeys.lowWaterMark >= resolved.prekeys.maxStoredOneTimePrekeys) {
    invalid(M.lowWaterAboveMax(resolved.prekeys.lowWaterMark, resolved.prekeys.maxStoredOneTimePrekeys));
  }
  return resolved;
}
