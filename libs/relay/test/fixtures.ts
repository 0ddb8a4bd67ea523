/** Shared helpers of the relay's database tests: a clock the test moves, ids, options. */
import { randomBytes } from 'node:crypto';
import { generateIdentityKeyPair, ready, type IdentityKeyPair } from '@usm/crypto';
import type { DataSource } from 'typeorm';
import { RelayMetrics } from '../src/metrics/metrics.service.js';
import type { RelayClock } from '../src/relay-clock.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import {
  resolveRelayOptions,
  type RelayModuleOptions,
  type ResolvedRelayOptions,
} from '../src/relay.options.js';

await ready();

/** The relay identity every test relay uses (the option is required). */
export const RELAY_IDENTITY: IdentityKeyPair = generateIdentityKeyPair();

/** A clock that only moves when the test says so. */
export class ManualClock implements RelayClock {
  constructor(public ms = Date.UTC(2026, 10, 25, 12, 0, 0)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export const messageId = (): Uint8Array => new Uint8Array(randomBytes(16));

/** A unique address per test, so tests sharing a database never see each other's rows. */
export const address = (name: string): string => `${name}-${randomBytes(6).toString('hex')}.1`;

export function options(
  url: string,
  extra: Omit<RelayModuleOptions, 'database' | 'identity'> = {},
): ResolvedRelayOptions {
  return resolveRelayOptions({ identity: RELAY_IDENTITY, database: { url }, ...extra });
}

export interface Kit {
  db: RelayDatabase;
  options: ResolvedRelayOptions;
  clock: ManualClock;
  metrics: RelayMetrics;
}

export function kit(
  ds: DataSource,
  url: string,
  extra: Omit<RelayModuleOptions, 'database' | 'identity'> = {},
): Kit {
  const opts = options(url, extra);
  return {
    db: new RelayDatabase(ds),
    options: opts,
    clock: new ManualClock(),
    metrics: new RelayMetrics(opts),
  };
}
