/**
 * The default rate limits are written down once in prose, as the table in docs/relay.md ("Rate
 * limits"). This keeps that table equal to the code: the limits to RELAY_DEFAULTS, the events to
 * the gateway handlers marked with @RelayRateLimit.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { RelayGateway } from '../relay.gateway.js';
import { RELAY_DEFAULTS } from '../relay.options.js';
import { RELAY_RATE_LIMIT_BUCKET } from './rate-limit.guard.js';
import { RATE_LIMIT_BUCKETS, type RateLimitBucket, type RateLimitRule } from './rate-limit.options.js';

const RELAY_DOC = fileURLToPath(new URL('../../../../docs/relay.md', import.meta.url));

/** The rows of the first table in the doc's "Rate limits" section, as trimmed cells. */
function documentedBuckets(): string[][] {
  const section = readFileSync(RELAY_DOC, 'utf8')
    .split(/^## /m)
    .find((s) => s.startsWith('Rate limits\n'));
  if (!section) throw new Error(`${RELAY_DOC} has no "## Rate limits" section`);
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
}

/** A rule as the table writes it: `3,000 per 60 s`, or `off`. */
function rule(r: RateLimitRule | false): string {
  return r === false ? 'off' : `${r.points.toLocaleString('en-US')} per ${r.durationSeconds} s`;
}

/** The events whose gateway handlers are charged to `bucket`, as the table writes them. */
function chargedEvents(bucket: RateLimitBucket): string {
  return Object.values(Object.getOwnPropertyDescriptors(RelayGateway.prototype))
    .map((property) => property.value as unknown)
    .filter((handler) => typeof handler === 'function')
    .filter((handler) => Reflect.getMetadata(RELAY_RATE_LIMIT_BUCKET, handler as object) === bucket)
    .map((handler) => `\`${String(Reflect.getMetadata(MESSAGE_METADATA, handler as object))}\``)
    .join(', ');
}

describe('the rate-limit table of docs/relay.md', () => {
  it('lists every bucket once, in order, with the events charged to it and its default limits', () => {
    const expected = RATE_LIMIT_BUCKETS.map((bucket) => {
      const { perIdentity, perAddress } = RELAY_DEFAULTS.rateLimits.buckets[bucket];
      return [`\`${bucket}\``, chargedEvents(bucket), rule(perIdentity), rule(perAddress)];
    });
    expect(documentedBuckets().map((row) => row.slice(0, 4))).toEqual(expected);
  });
});
