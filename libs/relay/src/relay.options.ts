/**
 * The relay module's options. Every option carries its `@default`; `resolveRelayOptions` merges
 * the defaults and validates the result, in one place, for forRoot and forRootAsync alike, so an
 * invalid option stops start-up with a message from relay.messages.ts that says how to fix it.
 */
import type { IdentityKeyPair } from '@usm/crypto';
import {
  DEFAULT_REPLAY_RETENTION_MS,
  DEFAULT_SKEW_WINDOW_MS,
  MAX_ENVELOPE_BYTES,
  MAX_FETCH_PAGE_BYTES,
} from '@usm/protocol';
import { validateCronExpression } from 'cron';
import type { DataSource } from 'typeorm';
import { RelayError, RelayErrorCode } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';

/** The relay opens and owns its DataSource (named 'usm-relay'). */
export interface RelayDatabaseUrlOptions {
  /** PostgreSQL connection URL: `postgres://user:password@host:5432/db`. */
  url: string;
  /**
   * Connections in the relay's pool.
   * @default 10
   */
  poolSize?: number;
  /**
   * Apply pending relay migrations at start-up, under an advisory lock so several nodes can start at
   * once. Set false when your deploy step runs them (export RELAY_MIGRATIONS).
   * @default true
   */
  migrationsRun?: boolean;
  /**
   * TLS to the database: `true`, or node's `tls.ConnectionOptions`.
   * @default false
   */
  ssl?: boolean | Record<string, unknown>;
}

/** The relay shares an initialised PostgreSQL DataSource of the host; the host destroys it. */
export interface RelayDatabaseDataSourceOptions {
  /** An initialised TypeORM DataSource of type 'postgres'. The relay reads and writes only its `usm_*` tables. */
  dataSource: DataSource;
  /**
   * Apply pending relay migrations at start-up (history in its own table, `usm_migrations`).
   * @default true
   */
  migrationsRun?: boolean;
}

export type RelayDatabaseOptions = RelayDatabaseUrlOptions | RelayDatabaseDataSourceOptions;

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

/** Where the socket.io server listens and who may connect. */
export interface RelaySocketOptions {
  /**
   * The socket.io path on the host's HTTP server. A host gateway of its own must use another path.
   * @default '/socket.io'
   */
  path?: string;
  /**
   * Browser origins allowed to connect (exact `scheme://host[:port]` strings). Empty: any origin.
   * Otherwise a request whose Origin header is not in the list is refused at connect (HTTP 403,
   * before any socket exists); clients that send no Origin (native apps, Node) are not affected.
   * @default []
   */
  allowedOrigins?: string[];
  /**
   * How a message reaches a recipient connected to another node: 'postgres' (the socket.io
   * PostgreSQL adapter on the relay's database: LISTEN/NOTIFY, binary payloads through the
   * `socket_io_attachments` table) or 'none' (a single node; live pushes stay on this node).
   * @default 'postgres'
   */
  adapter?: 'postgres' | 'none';
}

/** The client <-> relay handshake (docs/protocol.md, "Client <-> relay handshake"). */
export interface RelayHandshakeOptions {
  /**
   * How far a client's Init timestamp may be from the relay's clock, either way.
   * @default 300_000 (5 minutes)
   */
  skewWindowMs?: number;
  /**
   * How long a handshake nonce is remembered at least (always until its Init leaves the skew window).
   * @default 600_000 (10 minutes)
   */
  replayRetentionMs?: number;
  /**
   * An unauthenticated socket is closed after this: the handshake must complete in time.
   * @default 10_000
   */
  timeoutMs?: number;
}

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

  mail?: {
    /**
     * How long undelivered mail is kept, and the most a sender may ask for (Signal keeps 30 days).
     * @default 2_592_000_000 (30 days)
     */
    ttlMs?: number;
    /**
     * Undelivered messages one recipient may hold; more are refused with QUOTA_EXCEEDED.
     * @default 10_000
     */
    quotaPerRecipient?: number;
    /**
     * Largest envelope accepted, in bytes: by default the protocol's largest encoded envelope
     * (MAX_ENVELOPE_BYTES, 64 KiB of ciphertext plus the 57-byte header).
     * @default 65_593
     */
    maxEnvelopeBytes?: number;
    /**
     * Most envelopes in one store call.
     * @default 100
     */
    maxBatch?: number;
    /**
     * Largest page a fetch returns, and most ids in one ack.
     * @default 100
     */
    maxPage?: number;
    /**
     * Longest address (recipient or sender) accepted, in characters.
     * @default 256
     */
    maxAddressLength?: number;
    /**
     * Most bytes the relay holds for one socket's pushes: what engine.io has queued for it plus
     * what its websocket has not handed to the kernel yet. At it, `mail` pushes to that socket stop
     * (the mail stays stored) until the socket has written down to half, then it gets `mail:sync`
     * and fetches (docs/relay.md, "Push flow control"). Two of the largest push events
     * (MAX_FETCH_PAGE_BYTES each): a client that reads holds a backlog only until the kernel's
     * socket buffers take what one event-loop turn wrote to it, so only a client slower than its
     * mail falls behind, and that costs it a fetch, not a message.
     * @default 196_608 (2 × MAX_FETCH_PAGE_BYTES)
     */
    pushBacklogBytes?: number;
    /**
     * Most engine.io packets queued for one socket, the same way (many small pushes are held by
     * count before their bytes add up). A push of MAX_FETCH_PAGE envelopes is 51 packets (the event
     * and one per binary attachment): this is five of those.
     * @default 256
     */
    pushBacklogItems?: number;
  };

  cleanup?: {
    /**
     * Run the cleanup cron job on this node. Safe on every node at once.
     * @default true
     */
    enabled?: boolean;
    /**
     * When to run it: a cron expression (six fields with seconds, or five).
     * @default '0 * * * * *' (every minute)
     */
    cron?: string;
    /**
     * Rows deleted per statement; each statement is its own short transaction.
     * @default 5_000
     */
    batchSize?: number;
    /**
     * Statements per table per run, so one run is bounded; the rest waits for the next run.
     * @default 200
     */
    maxBatchesPerRun?: number;
  };

  prekeys?: {
    /**
     * One-time prekeys accepted in one upload.
     * @default 100
     */
    maxOneTimePrekeysPerUpload?: number;
    /**
     * One-time prekeys one identity may have stored.
     * @default 1_000
     */
    maxStoredOneTimePrekeys?: number;
    /**
     * When fewer one-time prekeys than this remain, the owner is told to upload more.
     * @default 10
     */
    lowWaterMark?: number;
    /**
     * Largest public key or signature accepted, in bytes (an ML-KEM-768 key is 1,184).
     * @default 2_048
     */
    maxKeyBytes?: number;
  };

  rateLimits?: {
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
     * Per-bucket limits, merged over the defaults:
     * - send:         per identity 100 per 5 s (a burst of 100, 20/s sustained); per address 500 per 5 s
     * - fetch:        per identity 600 per 60 s; per address 3,000 per 60 s. A client fetches on each
     *                 connect, every 30 s while connected, and page after page while it drains a
     *                 backlog: a full mailbox (`mail.quotaPerRecipient` 10,000) in pages of 50 is 200
     *                 fetches, a third of a window, and mail padded to 4 KiB (about 23 a page, 435
     *                 fetches) still drains within one window; only a backlog of 16 KiB messages or
     *                 larger (5 or fewer a page) spans several. A flood gets 10 requests a second per
     *                 identity. Per address: five identities behind one address draining at once.
     * - prekeyClaim:  per identity 30 per 60 s; per address 120 per 60 s
     * - prekeyUpload: per identity 6 per 600 s; per address 30 per 600 s
     * - handshake:    per identity 10 per 60 s; per address 30 per 60 s
     */
    buckets?: Partial<Record<RateLimitBucket, RateLimitBucketOptions>>;
  };

  metrics?: {
    /**
     * Prefix of every metric name.
     * @default 'usm_relay_'
     */
    prefix?: string;
    /**
     * Also collect prom-client's default process metrics into the relay's registry.
     * @default false
     */
    defaultMetrics?: boolean;
  };

  health?: {
    /**
     * Database ping timeout of the health indicator.
     * @default 1_000
     */
    timeoutMs?: number;
  };
}

/** Options with every default filled in, as services receive them (token RELAY_OPTIONS). */
export interface ResolvedRelayOptions {
  identity: IdentityKeyPair;
  handshake: Required<RelayHandshakeOptions>;
  socket: Required<RelaySocketOptions>;
  database:
    | { url: string; poolSize: number; migrationsRun: boolean; ssl: boolean | Record<string, unknown> }
    | { dataSource: DataSource; migrationsRun: boolean };
  mail: Required<NonNullable<RelayModuleOptions['mail']>>;
  cleanup: Required<NonNullable<RelayModuleOptions['cleanup']>>;
  prekeys: Required<NonNullable<RelayModuleOptions['prekeys']>>;
  rateLimits: {
    enabled: boolean;
    trustProxy: boolean;
    buckets: Record<
      RateLimitBucket,
      { perIdentity: RateLimitRule | false; perAddress: RateLimitRule | false }
    >;
  };
  metrics: Required<NonNullable<RelayModuleOptions['metrics']>>;
  health: Required<NonNullable<RelayModuleOptions['health']>>;
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
    maxBatch: 100,
    maxPage: 100,
    maxAddressLength: 256,
    pushBacklogBytes: 2 * MAX_FETCH_PAGE_BYTES,
    pushBacklogItems: 256,
  },
  cleanup: { enabled: true, cron: '0 * * * * *', batchSize: 5_000, maxBatchesPerRun: 200 },
  prekeys: {
    maxOneTimePrekeysPerUpload: 100,
    maxStoredOneTimePrekeys: 1_000,
    lowWaterMark: 10,
    maxKeyBytes: 2_048,
  },
  rateLimits: {
    enabled: true,
    trustProxy: false,
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

/**
 * Merges the defaults over `options` and validates every field. Throws a RelayError with code
 * INVALID_OPTIONS and a message naming the option and the fix.
 */
export function resolveRelayOptions(options: RelayModuleOptions): ResolvedRelayOptions {
  if (typeof options !== 'object' || options === null) invalid(M.missingDatabase());
  const D = RELAY_DEFAULTS;
  const mail = { ...D.mail, ...options.mail };
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
      maxEnvelopeBytes: int('mail.maxEnvelopeBytes', mail.maxEnvelopeBytes, 1, 64 * 1024 * 1024),
      maxBatch: int('mail.maxBatch', mail.maxBatch, 1, 10_000),
      maxPage: int('mail.maxPage', mail.maxPage, 1, 10_000),
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
        10_000,
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
