/**
 * The relay's side of the client <-> relay handshake: SIGMA-I (Krawczyk, CRYPTO 2003) in the
 * form of TLS 1.3 (RFC 8446 §4.4). See docs/protocol.md for the full description.
 *
 *   receiveInit(I)     -> Response: e_R, time, Seal(identity | Sig_R(relay context | TH)), HMAC(relay_finished, TH')
 *   receiveComplete(C) -> the client is authenticated: its MAC, then its signature over the transcript
 *
 * Checks on Init, cheapest first: layout, clock skew (CLOCK_SKEW, with the relay's time), the
 * client's signature (BAD_SIGNATURE), the DH (INVALID_KEY for a low-order ephemeral), and last
 * the shared replay store (REPLAY), so only authenticated nonces are ever stored. A client is
 * authenticated only after Complete: its Finished MAC (BAD_MAC: a Complete from another session
 * fails here) and its signature over both ephemerals and both identities. Any failure ends the
 * handshake: later calls are UNEXPECTED_MESSAGE.
 */
import {
  type IdentityKeyPair,
  type IdentityPublicKey,
  MessageKey,
  type X25519KeyPair,
  assertSignature,
  bytesEqual,
  generateX25519KeyPair,
  sealWithMessageKey,
  sha256Sync,
  sign,
  wipe,
  x25519,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { type Clock, systemClock } from './clock.js';
import { HandshakeClockSkewError, rethrowAsProtocolError } from './handshake-errors.js';
import {
  INIT_BODY_BYTES,
  decodeHandshakeComplete,
  decodeHandshakeInit,
  encodeHandshakeResponse,
  encodeRelayMaterial,
  encodeResponseHeader,
} from './handshake-messages.js';
import { TrafficKeys, type RelayHandshakeResult } from './handshake-result.js';
import {
  CLIENT_INIT_SIGNATURE_CONTEXT,
  CLIENT_SIGNATURE_CONTEXT,
  RELAY_SIGNATURE_CONTEXT,
} from './kdf-labels.js';
import {
  Transcript,
  deriveHandshakeKeys,
  deriveSessionSecrets,
  finishedMac,
  replayKey,
  signedContent,
  wipeHandshakeKeys,
  type HandshakeKeys,
} from './key-schedule.js';
import { DEFAULT_REPLAY_RETENTION_MS, DEFAULT_SKEW_WINDOW_MS } from './limits.js';
import type { HandshakeReplayStore } from './replay-store.js';

export interface RelayHandshakeOptions {
  /** The relay's persistent Ed25519 identity (the key clients pin). */
  identity: IdentityKeyPair;
  /** Remembers nonces of accepted Inits; shared by every node of the relay. */
  replayStore: HandshakeReplayStore;
  /** @default the system clock */
  clock?: Clock;
  /** How far a client's timestamp may be from the relay's clock, either way. @default 300000 (5 minutes) */
  skewWindowMs?: number;
  /**
   * How long a nonce is remembered at least. It is always remembered until its Init's
   * timestamp leaves the skew window, whatever this says. @default 600000 (10 minutes)
   */
  replayRetentionMs?: number;
}

type RelayState = 'awaiting-init' | 'awaiting-complete' | 'busy' | 'done' | 'failed';

/** What the relay keeps between message 2 and message 3. */
interface Pending {
  readonly transcript: Transcript;
  readonly clientIdentity: IdentityPublicKey;
  readonly clientTimeMs: number;
  readonly clientFinishedKey: Uint8Array;
  readonly masterSecret: Uint8Array;
}

/**
 * One handshake of the relay with one connecting client. Make a new one per connection; share
 * the options (identity, replay store, clock) between them.
 *
 * @example
 * const hs = new RelayHandshake({ identity: relayIdentity, replayStore });
 * const response = await hs.receiveInit(init);          // send to the client
 * const { peerIdentity } = await hs.receiveComplete(complete); // bind the socket to peerIdentity
 */
export class RelayHandshake {
  readonly #identity: IdentityKeyPair;
  readonly #replayStore: HandshakeReplayStore;
  readonly #clock: Clock;
  readonly #skewWindowMs: number;
  readonly #replayRetentionMs: number;
  #state: RelayState = 'awaiting-init';
  #pending: Pending | undefined;

  constructor(options: RelayHandshakeOptions) {
    this.#identity = options.identity;
    this.#replayStore = options.replayStore;
    this.#clock = options.clock ?? systemClock;
    this.#skewWindowMs = checkDuration(options.skewWindowMs ?? DEFAULT_SKEW_WINDOW_MS, 'skewWindowMs');
    this.#replayRetentionMs = checkDuration(
      options.replayRetentionMs ?? DEFAULT_REPLAY_RETENTION_MS,
      'replayRetentionMs',
    );
  }

  /** Message 1 in, message 2 out. */
  async receiveInit(initBytes: Uint8Array): Promise<Uint8Array> {
    this.#enter('awaiting-init', 'a HandshakeInit');
    let keys: HandshakeKeys | undefined;
    let dh: Uint8Array | undefined;
    let ephemeral: X25519KeyPair | undefined;
    try {
      const init = decodeHandshakeInit(initBytes);

      const now = this.#clock.now();
      if (Math.abs(init.timestampMs - now) > this.#skewWindowMs) {
        throw new HandshakeClockSkewError(now, init.timestampMs, this.#skewWindowMs);
      }
      // The signature of message 1 covers the client's ephemeral, identity, time and nonce.
      const initVerify = signedContent(
        CLIENT_INIT_SIGNATURE_CONTEXT,
        sha256Sync(initBytes.subarray(0, INIT_BODY_BYTES)),
      );
      assertSignature(init.identity, initVerify, init.signature, 'handshake client init signature');
      // X25519 refuses an all-zero output (low-order client ephemeral) with INVALID_KEY.
      ephemeral = generateX25519KeyPair();
      dh = x25519(ephemeral.secretKey, init.ephemeral);
      ephemeral.secretKey.wipe();

      // Last, and only for an authenticated Init: the nonce must be new on every node. It is
      // remembered until its timestamp can no longer pass the skew check (and for the retention).
      const expiresAtMs = Math.max(now + this.#replayRetentionMs, init.timestampMs + this.#skewWindowMs + 1);
      const fresh = await this.#replayStore.remember(
        replayKey(init.identity.encode(), init.nonce),
        expiresAtMs,
      );
      if (!fresh) {
        throw new ProtocolError(ProtocolErrorCode.Replay, 'handshake: this HandshakeInit was already used');
      }

      const header = encodeResponseHeader({ ephemeral: ephemeral.publicKey, timestampMs: now });
      const transcript = new Transcript().append(initBytes.slice(), header);
      const thKeys = transcript.hash();
      keys = deriveHandshakeKeys(dh, thKeys);

      // CertificateVerify (RFC 8446 §4.4.3): over both ephemerals and both identities.
      const identityBytes = this.#identity.publicKey.encode();
      const signature = sign(
        this.#identity,
        signedContent(RELAY_SIGNATURE_CONTEXT, transcript.append(identityBytes).hash()),
      );
      // Finished (RFC 8446 §4.4.4).
      const mac = finishedMac(keys.relayFinishedKey, transcript.append(signature).hash());
      transcript.append(mac);
      // SIGMA-I: identity and signature sealed under a one-time key from the handshake secret.
      const sealedMaterial = await sealWithMessageKey(
        new MessageKey(keys.materialKey, 0),
        encodeRelayMaterial({ identity: this.#identity.publicKey, signature }),
        thKeys,
      );

      this.#pending = {
        transcript,
        clientIdentity: init.identity,
        clientTimeMs: init.timestampMs,
        clientFinishedKey: keys.clientFinishedKey.slice(),
        masterSecret: keys.masterSecret.slice(),
      };
      this.#state = 'awaiting-complete';
      return encodeHandshakeResponse({
        ephemeral: ephemeral.publicKey,
        timestampMs: now,
        sealedMaterial,
        mac,
      });
    } catch (err) {
      this.#fail();
      return rethrowAsProtocolError(err);
    } finally {
      ephemeral?.secretKey.wipe();
      wipe(dh);
      wipeHandshakeKeys(keys);
    }
  }

  /** Message 3 in: on success the client is authenticated and the session keys are ready. */
  async receiveComplete(completeBytes: Uint8Array): Promise<RelayHandshakeResult> {
    this.#enter('awaiting-complete', 'a HandshakeComplete');
    const pending = this.#pending as Pending;
    try {
      const complete = decodeHandshakeComplete(completeBytes);
      const { transcript } = pending;
      const clientVerify = signedContent(CLIENT_SIGNATURE_CONTEXT, transcript.hash());
      // Finished first (a cheap MAC): a Complete from another session is refused here.
      const expectedMac = finishedMac(
        pending.clientFinishedKey,
        transcript.append(complete.signature).hash(),
      );
      if (!bytesEqual(expectedMac, complete.mac)) {
        throw new ProtocolError(
          ProtocolErrorCode.BadMac,
          'handshake: the client Finished MAC does not verify',
        );
      }
      assertSignature(pending.clientIdentity, clientVerify, complete.signature, 'handshake client signature');

      const secrets = deriveSessionSecrets(pending.masterSecret, transcript.append(complete.mac).hash());
      this.#state = 'done';
      return {
        peerIdentity: pending.clientIdentity,
        sessionId: secrets.sessionId,
        trafficKeys: new TrafficKeys(secrets.relayToClient, secrets.clientToRelay, secrets.sessionId),
        clientTimeMs: pending.clientTimeMs,
      };
    } catch (err) {
      this.#fail();
      return rethrowAsProtocolError(err);
    } finally {
      this.#wipePending();
    }
  }

  #enter(expected: RelayState, what: string): void {
    if (this.#state !== expected) {
      throw new ProtocolError(
        ProtocolErrorCode.UnexpectedMessage,
        `relay handshake: ${what} is not expected in state '${this.#state}'`,
      );
    }
    this.#state = 'busy';
  }

  #fail(): void {
    this.#state = 'failed';
    this.#wipePending();
  }

  #wipePending(): void {
    if (this.#pending) wipe(this.#pending.clientFinishedKey, this.#pending.masterSecret);
    this.#pending = undefined;
  }
}

function checkDuration(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `RelayHandshake: ${name} must be a positive integer number of milliseconds, got ${value}`,
    );
  }
  return value;
}
