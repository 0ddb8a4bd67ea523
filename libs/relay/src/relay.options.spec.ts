import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { IdentityKeyPair } from '@usm/crypto';
import {
  DEFAULT_FETCH_PAGE,
  LOW_PREKEY_THRESHOLD,
  MAX_ACKS_PER_CALL,
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPES_PER_SEND,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_RECORD_BYTES,
} from '@usm/protocol';
import { DataSource } from 'typeorm';
import { RelayError, RelayErrorCode } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';
import { RELAY_DEFAULTS, resolveRelayOptions, type RelayModuleOptions } from './relay.options.js';

const URL_ = 'postgres://relay:secret-password@localhost:5432/relay';

/** Shaped like @usm/crypto's IdentityKeyPair (the options check the shape only). */
const ID = {
  publicKey: { encode: () => new Uint8Array(34), fingerprint: () => 'relay' },
  secretKey: {},
} as unknown as IdentityKeyPair;

function refusal(options: unknown): RelayError {
  try {
    resolveRelayOptions(options as RelayModuleOptions);
  } catch (err) {
    if (RelayError.is(err, RelayErrorCode.InvalidOptions)) return err;
    throw err;
  }
  throw new Error('expected the options to be refused');
}

describe('resolveRelayOptions', () => {
  it('fills every default in one place', () => {
    const r = resolveRelayOptions({ identity: ID, database: { url: URL_ } });
    expect(r.database).toEqual({ url: URL_, poolSize: 10, migrationsRun: true, ssl: false });
    expect(r.mail).toEqual(RELAY_DEFAULTS.mail);
    expect(r.mail.ttlMs).toBe(30 * 24 * 60 * 60 * 1000);
    expect(r.cleanup).toEqual({
      enabled: true,
      cron: '0 * * * * *',
      batchSize: 5_000,
      maxBatchesPerRun: 200,
    });
    expect(r.prekeys.maxOneTimePrekeysPerUpload).toBe(100);
    expect(r.rateLimits.buckets.send.perIdentity).toEqual({ points: 100, durationSeconds: 5 });
    expect(r.rateLimits.buckets.prekeyUpload.perIdentity).toEqual({ points: 6, durationSeconds: 600 });
    expect(r.metrics).toEqual({ prefix: 'usm_relay_', defaultMetrics: false });
  });

  it('the fetch bucket lets a full mailbox drain in default pages within one window, with room for sweeps', () => {
    const { fetch } = resolveRelayOptions({ identity: ID, database: { url: URL_ } }).rateLimits.buckets;
    expect(fetch).toEqual({
      perIdentity: { points: 600, durationSeconds: 60 },
      perAddress: { points: 3_000, durationSeconds: 60 },
    });
    // Pages of 50 from a full mailbox, plus the 30 s sweeps of one window: under half the points.
    const { perIdentity } = RELAY_DEFAULTS.rateLimits.buckets.fetch;
    const drain = Math.ceil(RELAY_DEFAULTS.mail.quotaPerRecipient / DEFAULT_FETCH_PAGE);
    const sweeps = Math.ceil(perIdentity.durationSeconds / 30);
    expect(drain).toBe(200);
    expect(drain + sweeps).toBeLessThan(perIdentity.points / 2);
  });

  it('merges partial options over the defaults, bucket by bucket and dimension by dimension', () => {
    const r = resolveRelayOptions({
      identity: ID,
      database: { url: URL_, migrationsRun: false },
      mail: { quotaPerRecipient: 50 },
      rateLimits: { buckets: { send: { perAddress: false } } },
    });
    expect(r.mail).toEqual({ ...RELAY_DEFAULTS.mail, quotaPerRecipient: 50 });
    expect(r.rateLimits.buckets.send).toEqual({
      perIdentity: { points: 100, durationSeconds: 5 },
      perAddress: false,
    });
    expect(r.database.migrationsRun).toBe(false);
  });

  it('caps the push backlog per socket at two of the largest push events and 256 packets by default', () => {
    const r = resolveRelayOptions({ identity: ID, database: { url: URL_ } });
    expect(r.mail.pushBacklogBytes).toBe(2 * MAX_FETCH_PAGE_BYTES);
    expect(r.mail.pushBacklogItems).toBe(256);
    const custom = resolveRelayOptions({
      identity: ID,
      database: { url: URL_ },
      mail: { pushBacklogBytes: 1, pushBacklogItems: 1 },
    });
    expect(custom.mail).toMatchObject({ pushBacklogBytes: 1, pushBacklogItems: 1 });
    expect(refusal({ identity: ID, database: { url: URL_ }, mail: { pushBacklogBytes: 0 } }).message).toBe(
      M.notAnInteger('mail.pushBacklogBytes', 1, 1024 * 1024 * 1024, 0),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, mail: { pushBacklogItems: 1.5 } }).message).toBe(
      M.notAnInteger('mail.pushBacklogItems', 1, 1_000_000, 1.5),
    );
  });

  it('defaults the per-call limits to the protocol limits of the same meaning, and refuses more', () => {
    const r = resolveRelayOptions({ identity: ID, database: { url: URL_ } });
    expect(r.mail).toMatchObject({
      maxEnvelopeBytes: MAX_ENVELOPE_BYTES,
      maxEnvelopesPerSend: MAX_ENVELOPES_PER_SEND,
      maxFetchPage: MAX_FETCH_PAGE,
      maxAcksPerCall: MAX_ACKS_PER_CALL,
    });
    expect(r.prekeys).toMatchObject({
      maxOneTimePrekeysPerUpload: MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
      lowWaterMark: LOW_PREKEY_THRESHOLD,
      maxKeyBytes: MAX_PREKEY_RECORD_BYTES,
    });
    const lower = resolveRelayOptions({
      identity: ID,
      database: { url: URL_ },
      mail: { maxEnvelopesPerSend: 10, maxFetchPage: 20, maxAcksPerCall: 30, maxNoticeCursors: 40 },
    });
    expect(lower.mail).toMatchObject({
      maxEnvelopesPerSend: 10,
      maxFetchPage: 20,
      maxAcksPerCall: 30,
      maxNoticeCursors: 40,
    });
    const over = (mail: RelayModuleOptions['mail']) =>
      refusal({ identity: ID, database: { url: URL_ }, mail });
    expect(over({ maxEnvelopesPerSend: MAX_ENVELOPES_PER_SEND + 1 }).message).toBe(
      M.notAnInteger('mail.maxEnvelopesPerSend', 1, MAX_ENVELOPES_PER_SEND, MAX_ENVELOPES_PER_SEND + 1),
    );
    expect(over({ maxFetchPage: MAX_FETCH_PAGE + 1 }).message).toBe(
      M.notAnInteger('mail.maxFetchPage', 1, MAX_FETCH_PAGE, MAX_FETCH_PAGE + 1),
    );
    expect(over({ maxAcksPerCall: MAX_ACKS_PER_CALL + 1 }).message).toBe(
      M.notAnInteger('mail.maxAcksPerCall', 1, MAX_ACKS_PER_CALL, MAX_ACKS_PER_CALL + 1),
    );
    expect(over({ maxEnvelopeBytes: MAX_ENVELOPE_BYTES + 1 }).message).toBe(
      M.notAnInteger('mail.maxEnvelopeBytes', 1, MAX_ENVELOPE_BYTES, MAX_ENVELOPE_BYTES + 1),
    );
    expect(
      refusal({
        identity: ID,
        database: { url: URL_ },
        prekeys: { maxOneTimePrekeysPerUpload: MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 1 },
      }).message,
    ).toBe(
      M.notAnInteger(
        'prekeys.maxOneTimePrekeysPerUpload',
        1,
        MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
        MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 1,
      ),
    );
  });

  it('reads the deprecated mail.maxBatch and mail.maxPage as the options that replaced them, with a warning', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const resolve = (mail: RelayModuleOptions['mail']) =>
        resolveRelayOptions({ identity: ID, database: { url: URL_ }, mail }).mail;
      // The values they had by default: lowered to the protocol's caps, 100 acks and notice cursors.
      const old = resolve({ maxBatch: 100, maxPage: 100 });
      expect(old).toEqual({ ...RELAY_DEFAULTS.mail, maxAcksPerCall: 100, maxNoticeCursors: 100 });
      expect(old).not.toHaveProperty('maxBatch');
      expect(old).not.toHaveProperty('maxPage');
      expect(resolve({ maxBatch: 20, maxPage: 10 })).toMatchObject({
        maxEnvelopesPerSend: 20,
        maxFetchPage: 10,
        maxAcksPerCall: 10,
        maxNoticeCursors: 10,
      });
      // A new name set beside a deprecated one wins.
      expect(resolve({ maxPage: 10, maxFetchPage: 40, maxBatch: 5, maxEnvelopesPerSend: 7 })).toMatchObject({
        maxEnvelopesPerSend: 7,
        maxFetchPage: 40,
        maxAcksPerCall: 10,
        maxNoticeCursors: 10,
      });
      expect(warn.mock.calls.map(([message]) => message)).toContain(
        M.deprecatedOption('mail.maxPage', [
          'mail.maxFetchPage',
          'mail.maxAcksPerCall',
          'mail.maxNoticeCursors',
        ]),
      );
      expect(warn.mock.calls.map(([message]) => message)).toContain(
        M.deprecatedOption('mail.maxBatch', ['mail.maxEnvelopesPerSend']),
      );
      warn.mockClear();
      resolve({ maxFetchPage: 40 });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses a missing or ambiguous database, never echoing the URL (it holds a password)', () => {
    expect(refusal({}).message).toBe(M.missingDatabase());
    expect(refusal(undefined).message).toBe(M.missingDatabase());
    const ds = new DataSource({ type: 'postgres', url: URL_ });
    expect(refusal({ identity: ID, database: { url: URL_, dataSource: ds } }).message).toBe(
      M.ambiguousDatabase(),
    );
    const bad = refusal({ identity: ID, database: { url: 'mysql://relay:secret-password@localhost/relay' } });
    expect(bad.message).toBe(M.badDatabaseUrl());
    expect(bad.message).not.toContain('secret-password');
    const mysql = { options: { type: 'mysql' } } as unknown as DataSource;
    expect(refusal({ identity: ID, database: { dataSource: mysql } }).message).toBe(M.notPostgres('mysql'));
  });

  it('names the option, the accepted range and the value it got', () => {
    expect(refusal({ identity: ID, database: { url: URL_ }, mail: { ttlMs: -5 } }).message).toBe(
      M.notAnInteger('mail.ttlMs', 1_000, Number.MAX_SAFE_INTEGER, -5),
    );
    expect(M.notAnInteger('mail.ttlMs', 1_000, 9, -5)).toBe(
      'USM relay: option "mail.ttlMs" must be an integer from 1000 to 9, got -5. Fix it in ' +
        'MessengerRelayModule.forRoot({...}) or in the object your forRootAsync factory returns.',
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, mail: { maxBatch: '10' } }).message).toBe(
      M.notAnInteger('mail.maxBatch', 1, 10_000, '10'),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, cleanup: { enabled: 'yes' } }).message).toBe(
      M.notABoolean('cleanup.enabled', 'yes'),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, cleanup: { cron: '61 * * * *' } }).message).toBe(
      M.badCron('cleanup.cron', '61 * * * *'),
    );
    expect(
      refusal({
        identity: ID,
        database: { url: URL_ },
        rateLimits: { buckets: { send: { perIdentity: { points: 0 } } } },
      }).message,
    ).toBe(M.badRateLimitRule('rateLimits.buckets.send.perIdentity'));
    expect(
      refusal({ identity: ID, database: { url: URL_ }, rateLimits: { buckets: { sned: {} } } }).message,
    ).toBe(M.unknownBucket('sned', ['send', 'fetch', 'prekeyClaim', 'prekeyUpload', 'handshake']));
    expect(refusal({ identity: ID, database: { url: URL_ }, metrics: { prefix: 'usm-relay' } }).message).toBe(
      M.badPrefix('usm-relay'),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, prekeys: { lowWaterMark: 1_000 } }).message).toBe(
      M.lowWaterAboveMax(1_000, 1_000),
    );
  });

  it('takes the relay identity, handshake and socket options, with their defaults', () => {
    const r = resolveRelayOptions({ identity: ID, database: { url: URL_ } });
    expect(r.identity).toBe(ID);
    expect(r.handshake).toEqual({ skewWindowMs: 300_000, replayRetentionMs: 600_000, timeoutMs: 10_000 });
    expect(r.socket).toEqual({ path: '/socket.io', allowedOrigins: [], adapter: 'postgres' });
    expect(r.mail.maxEnvelopeBytes).toBe(65_593);
    const custom = resolveRelayOptions({
      identity: ID,
      database: { url: URL_ },
      handshake: { timeoutMs: 500 },
      socket: { path: '/relay', allowedOrigins: ['https://chat.example.com'], adapter: 'none' },
    });
    expect(custom.handshake).toEqual({ skewWindowMs: 300_000, replayRetentionMs: 600_000, timeoutMs: 500 });
    expect(custom.socket).toEqual({
      path: '/relay',
      allowedOrigins: ['https://chat.example.com'],
      adapter: 'none',
    });
  });

  it('refuses a missing identity and bad handshake or socket options, saying how to fix them', () => {
    expect(refusal({ database: { url: URL_ } }).message).toBe(M.badIdentity());
    expect(refusal({ identity: { publicKey: new Uint8Array(32) }, database: { url: URL_ } }).message).toBe(
      M.badIdentity(),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, handshake: { timeoutMs: 0 } }).message).toBe(
      M.notAnInteger('handshake.timeoutMs', 50, 600_000, 0),
    );
    expect(refusal({ identity: ID, database: { url: URL_ }, socket: { path: 'socket.io' } }).message).toBe(
      M.badSocketPath('socket.io'),
    );
    expect(
      refusal({
        identity: ID,
        database: { url: URL_ },
        socket: { allowedOrigins: ['https://a.example', '*'] },
      }).message,
    ).toBe(M.badOrigins(1));
    expect(refusal({ identity: ID, database: { url: URL_ }, socket: { adapter: 'redis' } }).message).toBe(
      M.badAdapter('redis'),
    );
  });
});
