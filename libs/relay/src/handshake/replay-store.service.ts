/**
 * The handshake's replay memory on PostgreSQL, shared by every relay node (docs/protocol.md,
 * "Anti-replay": timestamps inside a skew window plus remembered nonces reject replays).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { HandshakeReplayStore as ProtocolHandshakeReplayStore } from '@usm/protocol';
import { asBuffer } from '../database/bytea.js';
import { InjectRelayClock, RelayClock } from '../relay-clock.js';
import { RelayDatabase } from '../database/relay-database.js';
import { RelayError, RelayErrorCode } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';

/**
 * Remembers handshake nonces, atomically across every node that shares it: @usm/protocol's
 * interface (its RelayHandshake calls it), re-exported under the DI token of the same name.
 */
export type HandshakeReplayStore = ProtocolHandshakeReplayStore;

/** DI token of the HandshakeReplayStore. */
export const HandshakeReplayStore = Symbol('HandshakeReplayStore');

/** Injects the relay's HandshakeReplayStore. */
export const InjectHandshakeReplayStore = (): ParameterDecorator => Inject(HandshakeReplayStore);

/** Accepted nonce (or replay key) sizes: 16 bytes is the least that is unguessable. */
export const REPLAY_NONCE_MIN_BYTES = 16;
export const REPLAY_NONCE_MAX_BYTES = 64;

/**
 * @example
 * const fresh = await replayStore.remember(replayKey, initTimestampMs + 2 * SKEW_MS);
 * if (!fresh) throw new ProtocolError(ProtocolErrorCode.Replay, 'handshake replayed');
 */
@Injectable()
export class PostgresReplayStore implements HandshakeReplayStore {
  constructor(
    private readonly db: RelayDatabase,
    @InjectRelayClock() private readonly clock: RelayClock,
  ) {}

  async remember(nonce: Uint8Array, expiresAtMs: number): Promise<boolean> {
    if (
      !(nonce instanceof Uint8Array) ||
      nonce.length < REPLAY_NONCE_MIN_BYTES ||
      nonce.length > REPLAY_NONCE_MAX_BYTES
    ) {
      const length = nonce instanceof Uint8Array ? nonce.length : 0;
      throw new RelayError(
        RelayErrorCode.InvalidInput,
        M.badNonce(length, REPLAY_NONCE_MIN_BYTES, REPLAY_NONCE_MAX_BYTES),
      );
    }
    // A new nonce is inserted; a remembered one that has expired (not yet cleaned up) is taken
    // over; an unexpired one is left alone and nothing is returned: a replay.
    const { rowCount } = await this.db.query(
      `INSERT INTO usm_replay_nonces (nonce, expires_at) VALUES ($1, $2)
       ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
        WHERE usm_replay_nonces.expires_at <= $3
       RETURNING 1`,
      [asBuffer(nonce), new Date(expiresAtMs), new Date(this.clock.now())],
    );
    return rowCount === 1;
  }
}
