/**
 * What a completed handshake yields on either side: the authenticated peer identity, a public
 * session id, and the two traffic keys, oriented for this side (`send` on one side is `receive`
 * on the other). Keys never print: `toJSON` and Node's inspect hook show the session id's first
 * bytes only.
 */
import { type IdentityPublicKey, toHex, wipe } from '@usm/crypto';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** The session's two AES-256 traffic keys, for frames after the handshake. */
export class TrafficKeys {
  readonly #send: Uint8Array;
  readonly #receive: Uint8Array;

  constructor(
    send: Uint8Array,
    receive: Uint8Array,
    /** Public: only used to describe the keys. */
    private readonly sessionId: Uint8Array,
  ) {
    this.#send = send;
    this.#receive = receive;
  }

  /** Key of frames this side sends (not a copy). */
  get send(): Uint8Array {
    return this.#send;
  }

  /** Key of frames this side receives (not a copy). */
  get receive(): Uint8Array {
    return this.#receive;
  }

  /** Zeroes both keys (best effort: JavaScript may hold copies). */
  wipe(): void {
    wipe(this.#send, this.#receive);
  }

  toJSON(): string {
    return `TrafficKeys(session ${toHex(this.sessionId.subarray(0, 8))})`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspectSymbol](): string {
    return this.toJSON();
  }
}

export interface HandshakeResult {
  /** The peer's Ed25519 identity, proven by its signature over the transcript and its MAC. */
  readonly peerIdentity: IdentityPublicKey;
  /** 32 public bytes naming the session (same on both sides). */
  readonly sessionId: Uint8Array;
  readonly trafficKeys: TrafficKeys;
}

export interface ClientHandshakeResult extends HandshakeResult {
  /** The relay's clock at message 2 (authenticated): lets the client measure its clock offset. */
  readonly relayTimeMs: number;
}

export interface RelayHandshakeResult extends HandshakeResult {
  /** The client's clock at message 1 (authenticated, within the skew window). */
  readonly clientTimeMs: number;
}
