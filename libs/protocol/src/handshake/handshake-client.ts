/**
 * The client's side of the client <-> relay handshake: SIGMA-I (Krawczyk, "SIGMA: the
 * 'SIGn-and-MAc' approach to authenticated Diffie-Hellman", CRYPTO 2003) in the form
 * TLS 1.3 gives it (RFC 8446 §4.4: CertificateVerify signs the transcript hash, Finished is an
 * HMAC under a key from the handshake secret). See docs/protocol.md for the full description.
 *
 *   start()            -> Init:     e_C, identity, time, nonce, Sig_C(init context | SHA-256(Init body))
 *   receiveResponse(R) -> Complete: Sig_C(client context | TH), HMAC(client_finished, TH')
 *
 * The relay's identity arrives sealed; it must equal the pinned key (IDENTITY_MISMATCH), its
 * signature must cover the transcript with both ephemerals (BAD_SIGNATURE), and its Finished
 * MAC must verify (BAD_MAC). Any failure ends the handshake: later calls are UNEXPECTED_MESSAGE.
 */
import {
  type IdentityKeyPair,
  type IdentityPublicKey,
  MessageKey,
  type X25519KeyPair,
  assertSignature,
  bytesEqual,
  concatBytes,
  generateX25519KeyPair,
  openWithMessageKey,
  randomBytes,
  sign,
  sha256Sync,
  wipe,
  x25519,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { type Clock, systemClock } from './clock.js';
import { rethrowAsProtocolError } from './handshake-errors.js';
import {
  decodeHandshakeResponse,
  decodeRelayMaterial,
  encodeHandshakeComplete,
  encodeInitBody,
  encodeResponseHeader,
} from './handshake-messages.js';
import { TrafficKeys, type ClientHandshakeResult } from './handshake-result.js';
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
  signedContent,
  wipeHandshakeKeys,
  type HandshakeKeys,
} from './key-schedule.js';
import { HANDSHAKE_NONCE_BYTES } from './limits.js';

export interface HandshakeClientOptions {
  /** The client's long-term Ed25519 identity. */
  identity: IdentityKeyPair;
  /** The relay's identity key, pinned (shipped with the app or confirmed out of band). */
  relayIdentity: IdentityPublicKey;
  /** @default the system clock */
  clock?: Clock;
}

type ClientState = 'initial' | 'awaiting-response' | 'busy' | 'done' | 'failed';

/**
 * One handshake attempt of a client with its pinned relay. Make a new one per connection.
 *
 * @example
 * const hs = new HandshakeClient({ identity, relayIdentity: pinnedRelayKey });
 * const init = hs.start();                                  // send to the relay
 * const { complete, result } = await hs.receiveResponse(response); // send `complete`
 * result.trafficKeys.send; // key for frames to the relay
 */
export class HandshakeClient {
  readonly #identity: IdentityKeyPair;
  readonly #relayIdentity: IdentityPublicKey;
  readonly #clock: Clock;
  #state: ClientState = 'initial';
  #ephemeral: X25519KeyPair | undefined;
  #init: Uint8Array | undefined;

  constructor(options: HandshakeClientOptions) {
    this.#identity = options.identity;
    this.#relayIdentity = options.relayIdentity;
    this.#clock = options.clock ?? systemClock;
  }

  /** Message 1: a fresh ephemeral, the client's identity, time and nonce, signed. */
  start(): Uint8Array {
    this.#enter('initial', 'start()');
    try {
      const ephemeral = generateX25519KeyPair();
      this.#ephemeral = ephemeral;
      const body = encodeInitBody({
        ephemeral: ephemeral.publicKey,
        identity: this.#identity.publicKey,
        timestampMs: this.#clock.now(),
        nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
      });
      const signature = sign(this.#identity, signedContent(CLIENT_INIT_SIGNATURE_CONTEXT, sha256Sync(body)));
      this.#init = concatBytes(body, signature);
      this.#state = 'awaiting-response';
      return this.#init.slice();
    } catch (err) {
      this.#fail();
      return rethrowAsProtocolError(err);
    }
  }

  /** Message 2 in, message 3 out; on success the handshake is complete on the client's side. */
  async receiveResponse(
    responseBytes: Uint8Array,
  ): Promise<{ complete: Uint8Array; result: ClientHandshakeResult }> {
    this.#enter('awaiting-response', 'a HandshakeResponse');
    let keys: HandshakeKeys | undefined;
    try {
      const init = this.#init as Uint8Array;
      const ephemeral = this.#ephemeral as X25519KeyPair;
      const response = decodeHandshakeResponse(responseBytes);
      const header = encodeResponseHeader(response);
      const transcript = new Transcript().append(init, header);
      const thKeys = transcript.hash();

      // Key schedule: X25519 refuses an all-zero output (low-order relay ephemeral) with INVALID_KEY.
      const dh = x25519(ephemeral.secretKey, response.ephemeral);
      ephemeral.secretKey.wipe();
      keys = deriveHandshakeKeys(dh, thKeys);

      // SIGMA-I: the relay's identity and signature are sealed under the handshake keys.
      const opened = await openWithMessageKey(
        new MessageKey(keys.materialKey, 0),
        response.sealedMaterial,
        thKeys,
      );
      const material = decodeRelayMaterial(opened);
      wipe(opened);
      if (!material.identity.equals(this.#relayIdentity)) {
        throw new ProtocolError(
          ProtocolErrorCode.IdentityMismatch,
          `handshake: the relay proved identity ${material.identity.fingerprint()}, ` +
            `but ${this.#relayIdentity.fingerprint()} is pinned`,
        );
      }
      // CertificateVerify (RFC 8446 §4.4.3): over both ephemerals and the relay identity.
      const identityBytes = material.identity.encode();
      const relayVerify = signedContent(RELAY_SIGNATURE_CONTEXT, transcript.append(identityBytes).hash());
      assertSignature(material.identity, relayVerify, material.signature, 'handshake relay signature');
      // Finished (RFC 8446 §4.4.4): key confirmation.
      const expectedMac = finishedMac(keys.relayFinishedKey, transcript.append(material.signature).hash());
      if (!bytesEqual(expectedMac, response.mac)) {
        throw new ProtocolError(
          ProtocolErrorCode.BadMac,
          'handshake: the relay Finished MAC does not verify',
        );
      }
      transcript.append(response.mac);

      // Message 3: the client signs the whole transcript (both ephemerals, both identities), then MACs it.
      const signature = sign(this.#identity, signedContent(CLIENT_SIGNATURE_CONTEXT, transcript.hash()));
      const mac = finishedMac(keys.clientFinishedKey, transcript.append(signature).hash());
      const complete = encodeHandshakeComplete({ signature, mac });

      const secrets = deriveSessionSecrets(keys.masterSecret, transcript.append(mac).hash());
      this.#state = 'done';
      return {
        complete,
        result: {
          peerIdentity: material.identity,
          sessionId: secrets.sessionId,
          trafficKeys: new TrafficKeys(secrets.clientToRelay, secrets.relayToClient, secrets.sessionId),
          relayTimeMs: response.timestampMs,
        },
      };
    } catch (err) {
      this.#state = 'failed';
      return rethrowAsProtocolError(err);
    } finally {
      wipeHandshakeKeys(keys);
      this.#wipeEphemeral();
    }
  }

  #enter(expected: ClientState, what: string): void {
    if (this.#state !== expected) {
      throw new ProtocolError(
        ProtocolErrorCode.UnexpectedMessage,
        `handshake client: ${what} is not expected in state '${this.#state}'`,
      );
    }
    this.#state = 'busy';
  }

  #fail(): void {
    this.#state = 'failed';
    this.#wipeEphemeral();
  }

  #wipeEphemeral(): void {
    this.#ephemeral?.secretKey.wipe();
    this.#ephemeral = undefined;
  }
}
