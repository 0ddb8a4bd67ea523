/**
 * The protocol parameters the reliability suite relies on, read from the code that enforces them
 * and pinned here, plus the suite's sizes (test/reliability/parameters.ts). Each lands in the
 * Parameters table of docs/reliability.md.
 */
import { describe, expect, it } from '@jest/globals';
import { MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS } from '@usm/crypto';
import {
  DEFAULT_REPLAY_RETENTION_MS,
  DEFAULT_SKEW_WINDOW_MS,
  MAX_ENVELOPE_CIPHERTEXT_BYTES,
  SOCKET_MAX_HTTP_BUFFER_BYTES,
} from '@usm/protocol';
import { RELAY_DEFAULTS } from '@usm/relay';
import { HANDSHAKE_NONCE_BYTES } from '../../libs/protocol/src/handshake/limits.js';
import { RELIABILITY_MODE, SIZES } from './parameters.js';
import { recordCase, recordParameter } from './report.js';

const KiB = 1024;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

describe('reliability parameters', () => {
  it('pins the protocol limits the suite asserts', () => {
    const pinned: [string, number, number, string][] = [
      ['Double Ratchet MAX_SKIP (per chain)', MAX_SKIP, 1000, 'libs/crypto/src/ratchet/limits.ts'],
      ['Double Ratchet MAX_SKIPPED_KEYS', MAX_SKIPPED_KEYS, 2000, 'libs/crypto/src/ratchet/limits.ts'],
      ['Double Ratchet MAX_RECEIVING_CHAINS', MAX_RECEIVING_CHAINS, 5, 'libs/crypto/src/ratchet/limits.ts'],
      [
        'Envelope ciphertext max (bytes)',
        MAX_ENVELOPE_CIPHERTEXT_BYTES,
        64 * KiB,
        'libs/protocol/src/limits.ts',
      ],
      [
        'socket.io maxHttpBufferSize (bytes)',
        SOCKET_MAX_HTTP_BUFFER_BYTES,
        128 * KiB,
        'libs/protocol/src/limits.ts',
      ],
      [
        'Handshake skew window (ms, either way)',
        DEFAULT_SKEW_WINDOW_MS,
        5 * MINUTE_MS,
        'libs/protocol/src/handshake/limits.ts',
      ],
      ['Handshake nonce bytes', HANDSHAKE_NONCE_BYTES, 32, 'libs/protocol/src/handshake/limits.ts'],
      [
        'Handshake nonce retention (ms)',
        DEFAULT_REPLAY_RETENTION_MS,
        10 * MINUTE_MS,
        'libs/protocol/src/handshake/limits.ts',
      ],
      [
        'Mailbox TTL default (ms)',
        RELAY_DEFAULTS.mail.ttlMs,
        30 * DAY_MS,
        'libs/relay/src/relay.options.ts (RELAY_DEFAULTS)',
      ],
    ];
    for (const [name, value, , source] of pinned) recordParameter(name, value, source);
    const wrong = pinned.filter(([, value, expected]) => value !== expected).map(([name]) => name);
    recordCase({
      id: 'P1',
      title: 'Protocol limits read from the code equal the documented values',
      figures: { parameters: pinned.length, mismatched: wrong.length },
      outcome: wrong.length === 0 ? 'pass' : 'fail',
    });
    expect(wrong).toEqual([]);
    // The nonce must outlive every Init that passed the skew check (timestamp + skew <= now + 2 skew).
    expect(DEFAULT_REPLAY_RETENTION_MS).toBeGreaterThanOrEqual(2 * DEFAULT_SKEW_WINDOW_MS);
  });

  it('records the suite sizes of this run', () => {
    for (const [name, value] of Object.entries(SIZES)) {
      recordParameter(`SIZES.${name} (${RELIABILITY_MODE})`, value, 'test/reliability/parameters.ts');
    }
    expect(SIZES.permutationMessages).toBeGreaterThanOrEqual(1000);
    expect(SIZES.permutationSeeds).toBeGreaterThanOrEqual(5);
    expect(SIZES.nonceMessages).toBeGreaterThanOrEqual(10_000);
    expect(SIZES.fuzzFrames).toBeGreaterThanOrEqual(10_000);
  });
});
