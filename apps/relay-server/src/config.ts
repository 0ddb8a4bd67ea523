/**
 * The sample relay's configuration: environment variables only, each validated at start-up with
 * a message that says how to fix it. README.md's "Configuration" table lists the same variables.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type LogLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';
const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

export interface RelayServerConfig {
  /** PORT: HTTP and socket.io port. @default 3000 */
  readonly port: number;
  /** HOST: interface to listen on. @default '127.0.0.1' (set 0.0.0.0 in containers) */
  readonly host: string;
  /** DATABASE_URL: a PostgreSQL URL; when unset, embedded PostgreSQL runs in DATA_DIR. */
  readonly databaseUrl: string | undefined;
  /** EMBEDDED_PG_PORT: port of the embedded PostgreSQL (loopback). @default 54329 */
  readonly embeddedPostgresPort: number;
  /** DATA_DIR: the relay's identity key and the embedded cluster. @default './.data/relay' */
  readonly dataDir: string;
  /** RELAY_IDENTITY_FILE: the relay's Ed25519 identity key. @default '<DATA_DIR>/relay-identity.key' */
  readonly identityFile: string;
  /** LOG_LEVEL: the most verbose level logged (JSON lines on stdout). @default 'log' */
  readonly logLevel: LogLevel;
  /** ALLOWED_ORIGINS: comma-separated browser origins allowed to connect; empty = any. @default '' */
  readonly allowedOrigins: string[];
  /** MAIL_TTL_SECONDS: how long undelivered mail is kept. @default 2592000 (30 days) */
  readonly mailTtlMs: number;
  /**
   * CLEANUP_CRON: when this node deletes expired mail, replay nonces and rate-limit rows (a cron
   * expression, six fields with seconds or five). Every node may run it at once. @default '0 * * * * *'
   */
  readonly cleanupCron: string;
  /** CLEANUP_BATCH_SIZE: rows one cleanup statement deletes at most. @default 5000 */
  readonly cleanupBatchSize: number;
  /** RATE_LIMITS: 'on' or 'off' (benchmarks turn them off). @default 'on' */
  readonly rateLimits: boolean;
  /** TRUST_PROXY: 'on' behind exactly one proxy (the last X-Forwarded-For hop is the client). @default 'off' */
  readonly trustProxy: boolean;
  /** WEB_DEMO_DIR: a folder served at `/` (the built browser demo). @default apps/web-demo/dist when it exists */
  readonly webDemoDir: string | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: 'on' | 'off'): boolean {
  const value = (env[name] || fallback).toLowerCase();
  if (value !== 'on' && value !== 'off')
    throw new ConfigError(`${name} must be "on" or "off"; got "${env[name]}"`);
  return value === 'on';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}

/** Reads and validates the configuration from `env`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): RelayServerConfig {
  const dataDir = resolve(env.DATA_DIR || join('.data', 'relay'));
  const logLevel = (env.LOG_LEVEL || 'log') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${env.LOG_LEVEL}"`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/\S+$/.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must look like postgres://user:password@host:5432/database');
  }
  const defaultDemo = resolve('apps', 'web-demo', 'dist');
  const webDemoDir = env.WEB_DEMO_DIR
    ? resolve(env.WEB_DEMO_DIR)
    : existsSync(defaultDemo)
      ? defaultDemo
      : undefined;
  return {
    port: integer(env, 'PORT', 3000, 0, 65_535),
    host: env.HOST || '127.0.0.1',
    databaseUrl,
    embeddedPostgresPort: integer(env, 'EMBEDDED_PG_PORT', 54_329, 1, 65_535),
    dataDir,
    identityFile: resolve(env.RELAY_IDENTITY_FILE || join(dataDir, 'relay-identity.key')),
    logLevel,
    allowedOrigins: (env.ALLOWED_ORIGINS || '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    mailTtlMs: integer(env, 'MAIL_TTL_SECONDS', 30 * 24 * 3600, 1, 10 * 365 * 24 * 3600) * 1000,
    cleanupCron: env.CLEANUP_CRON || '0 * * * * *',
    cleanupBatchSize: integer(env, 'CLEANUP_BATCH_SIZE', 5_000, 1, 1_000_000),
    rateLimits: onOff(env, 'RATE_LIMITS', 'on'),
    trustProxy: onOff(env, 'TRUST_PROXY', 'off'),
    webDemoDir,
  };
}
