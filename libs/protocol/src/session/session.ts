/**
 * A session with one peer device: the Double Ratchet that PQXDH set up, the peer's identity, the
 * prekey header the initiator repeats until it is answered, and the reset path.
 *
 * Shaped like libsignal's SessionRecord/SessionCipher (rust/protocol/src/session_cipher.rs,
 * state/session.rs): a current state and a few archived ones, each with its setup id.
 *  - Pending prekey header (PreKeySignalMessage, PQXDH §3.3): the initiator sends every message
 *    as a prekey message until a message from the peer decrypts in that state, so a lost first
 *    message does not wedge the session: any later one sets it up.
 *  - Reset (Matrix's "unable to decrypt"): a client that cannot decrypt from its peer claims a
 *    fresh bundle and calls `restart`; its next message is a prekey message of a new setup. The
 *    receiver replaces its current state with the new one only after the new one decrypted that
 *    message; the old state is archived, so late mail of the old session still decrypts.
 *  - What stops forced resets: a prekey message replaces a state only when (1) its IK_A is this
 *    session's peer (IDENTITY_MISMATCH), (2) its first ratchet message authenticates under keys
 *    that need the peer's identity secret (DH1) and the receiver's prekeys (BAD_MAC otherwise),
 *    and (3) its setup is not one this session already had (REPLAY: PQXDH §4.2). A failure
 *    changes nothing.
 *  - Simultaneous initiation: both states are kept; whichever decrypts a message is promoted to
 *    current, so the peers converge on one (libsignal promotes the same way).
 * Operations on one session run one at a time.
 *
 * Pickle body (big-endian), version 1:
 *   version u8 | peer identity (32) | state count u8 (1..1+MAX_ARCHIVED_SESSION_STATES)
 *   | { setup id (32) | pending u8 (0/1) | [u16 length | prekey header] | u32 length | ratchet pickle } ...
 *   | retired count u8 | { setup id (32) } ...
 */
import {
  CryptoError,
  CryptoErrorCode,
  DoubleRatchet,
  type IdentityKeyPair,
  IdentityPublicKey,
  RATCHET_MESSAGE_OVERHEAD,
  SerialQueue,
  fromHex,
  toHex,
  wipe,
} from '@usm/crypto';
import { BinaryReader, BinaryWriter, assertUint8Array } from '../encoding/binary-reader.js';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { SESSION_PICKLE_AD } from './kdf-labels.js';
import { MAX_ARCHIVED_SESSION_STATES, MAX_RATCHET_PICKLE_BYTES, MAX_REMEMBERED_SETUP_IDS } from './limits.js';
import { badPickle, openPickle, parsePickle, sealPickle } from './pickle.js';
import type { PrekeyStore } from './prekey-store.js';
import type { SessionPrekeyBundle } from './prekeys.js';
import { acceptSetup, initiateSetup } from './pqxdh.js';
import { SessionMessages, toProtocolError } from './session-errors.js';
import {
  MAX_PREKEY_HEADER_BYTES,
  MAX_SESSION_MESSAGE_BYTES,
  type PrekeyHeader,
  SessionMessageType,
  decodePrekeyHeader,
  decodeSessionMessage,
  encodePrekeyHeader,
  encodeSessionMessage,
  setupIdOf,
} from './session-message.js';

/** Version byte of the session pickle body. */
export const SESSION_PICKLE_VERSION = 1;

interface SessionState {
  /** Hex SHA-256 of the prekey header that set this state up. */
  readonly setupId: string;
  readonly ratchet: DoubleRatchet;
  /** The initiator's prekey header, until a message from the peer decrypts in this state. */
  pending: PrekeyHeader | undefined;
}

export interface SessionDecryptResult {
  readonly plaintext: Uint8Array;
  /**
   * True when the message was a prekey message of a new setup that replaced the current state
   * (a first contact through `Session.accept` is not counted: it has no state to replace).
   */
  readonly startedNewSession: boolean;
}

export interface AcceptedSession {
  readonly session: Session;
  readonly plaintext: Uint8Array;
}

/**
 * One end of an end-to-end session with one peer device.
 *
 * @example
 * // Alice, with Bob's claimed bundle:
 * const toBob = Session.initiate(alice, bundleFromClaim(claim.bundle), bobIdentity);
 * const wire = await toBob.encrypt(plaintext); // a prekey message until Bob answers
 * // Bob, first contact (sender identity from the relay's mail item):
 * const { session: toAlice, plaintext } = await Session.accept(bobPrekeys, wire, aliceIdentity);
 * // Bob, later messages (also new prekey messages after Alice resets):
 * const { plaintext, startedNewSession } = await toAlice.decrypt(next, bobPrekeys);
 * // Either side, when a peer's messages no longer decrypt (NO_SESSION):
 * await toBob.restart(alice, bundleFromClaim(fresh.bundle));
 */
export class Session {
  readonly #peer: IdentityPublicKey;
  /** [0] is current; the rest are archived, newest first. */
  #states: SessionState[];
  /** Setup ids of states dropped from the archive, oldest first. */
  #retired: string[];
  readonly #queue = new SerialQueue();

  private constructor(peer: IdentityPublicKey, states: SessionState[], retired: string[]) {
    this.#peer = peer;
    this.#states = states;
    this.#retired = retired;
  }

  /**
   * Starts a session with `expectedPeer` from its claimed bundle (PQXDH §3.3). Throws
   * IDENTITY_MISMATCH, BAD_SIGNATURE or INVALID_KEY (ProtocolError) for a bundle to refuse.
   */
  static initiate(
    identity: IdentityKeyPair,
    bundle: SessionPrekeyBundle,
    expectedPeer: IdentityPublicKey,
  ): Session {
    const { ratchet, header } = initiateSetup(identity, bundle, expectedPeer);
    return new Session(expectedPeer, [{ setupId: setupIdOf(header), ratchet, pending: header }], []);
  }

  /**
   * First contact from `expectedPeer` (the sender the relay stamped on the mail): the message
   * must be a prekey message (NO_SESSION otherwise) set up by that identity (IDENTITY_MISMATCH),
   * with prekeys of `prekeys` (BAD_PREKEY), that authenticates (BAD_MAC). On success the
   * one-time prekeys it used are gone from `prekeys`: persist both the session and the store.
   */
  static async accept(
    prekeys: PrekeyStore,
    message: Uint8Array,
    expectedPeer: IdentityPublicKey,
    context?: Uint8Array,
  ): Promise<AcceptedSession> {
    const m = decodeSessionMessage(message);
    if (m.type !== SessionMessageType.Prekey) {
      throw new ProtocolError(ProtocolErrorCode.NoSession, SessionMessages.noSessionForRatchetMessage());
    }
    checkSender(m.header, expectedPeer);
    const { ratchet, plaintext } = await acceptSetup(prekeys, m.header, m.ratchetMessage, context);
    const session = new Session(
      expectedPeer,
      [{ setupId: setupIdOf(m.header), ratchet, pending: undefined }],
      [],
    );
    return { session, plaintext };
  }

  /** The peer's identity key. */
  get peerIdentity(): IdentityPublicKey {
    return this.#peer;
  }

  /** The current state's setup id (hex; public). */
  get setupId(): string {
    return this.#states[0]!.setupId;
  }

  /** True while this end is the initiator of the current state and the peer has not answered. */
  get awaitingReply(): boolean {
    return this.#states[0]!.pending !== undefined;
  }

  /**
   * Encrypts for the peer with the current state: a prekey message while awaiting a reply.
   * `context` (not sent) is bound into the message's authentication: the receiver passes the
   * same bytes to `decrypt` or `accept`. The client binds the envelope's message id this way.
   */
  encrypt(plaintext: Uint8Array, context?: Uint8Array): Promise<Uint8Array> {
    return this.#serialize(() => this.#encrypt(plaintext, context));
  }

  /**
   * Decrypts a message from the peer. A ratchet message is tried on the current state, then on
   * the archived ones (one that decrypts becomes current). A prekey message of a known setup goes
   * to that setup's state; one of a new setup runs PQXDH (§3.4) with `prekeys` and, once its
   * first message decrypted, becomes the current state (`startedNewSession`).
   * Throws (and changes nothing): NO_SESSION (no state opens it: restart the session), REPLAY,
   * BAD_MAC, IDENTITY_MISMATCH, BAD_PREKEY, INVALID_KEY, TOO_LARGE, MALFORMED.
   */
  decrypt(message: Uint8Array, prekeys: PrekeyStore, context?: Uint8Array): Promise<SessionDecryptResult> {
    return this.#serialize(() => this.#decrypt(message, prekeys, context));
  }

  /**
   * Starts a fresh setup with the same peer from a newly claimed bundle (the reset path): the
   * new state becomes current and awaits a reply; the old one is archived.
   */
  restart(identity: IdentityKeyPair, bundle: SessionPrekeyBundle): Promise<void> {
    return this.#serialize(async () => {
      const { ratchet, header } = initiateSetup(identity, bundle, this.#peer);
      this.#adopt({ setupId: setupIdOf(header), ratchet, pending: header });
    });
  }

  /** The session as versioned bytes, encrypted under `key` (32 bytes) when given. */
  pickle(key?: Uint8Array): Promise<Uint8Array> {
    return this.#serialize(async () => {
      const parts: Uint8Array[] = [];
      for (const s of this.#states) {
        const header = s.pending ? encodePrekeyHeader(s.pending) : undefined;
        const ratchet = await s.ratchet.pickle();
        const w = new BinaryWriter(32 + 1 + (header ? 2 + header.length : 0) + 4 + ratchet.length)
          .bytes(fromHex(s.setupId))
          .u8(header ? 1 : 0);
        if (header) w.u16(header.length).bytes(header);
        parts.push(w.u32(ratchet.length).bytes(ratchet).finish());
        wipe(ratchet);
      }
      const size = 1 + 32 + 1 + parts.reduce((n, p) => n + p.length, 0) + 1 + 32 * this.#retired.length;
      const w = new BinaryWriter(size).u8(SESSION_PICKLE_VERSION).bytes(this.#peer.bytes).u8(parts.length);
      for (const p of parts) w.bytes(p);
      w.u8(this.#retired.length);
      for (const id of this.#retired) w.bytes(fromHex(id));
      const body = w.finish();
      try {
        return await sealPickle(body, SESSION_PICKLE_AD, 'session pickle', key);
      } finally {
        wipe(body, ...parts);
      }
    });
  }

  /** Restores a session from `pickle()`'s bytes; BAD_PICKLE for anything that does not load. */
  static async fromPickle(pickle: Uint8Array, key?: Uint8Array): Promise<Session> {
    const what = 'session pickle';
    assertUint8Array(pickle, what);
    const body = await openPickle(pickle, SESSION_PICKLE_AD, what, key);
    try {
      const parsed = parsePickle(what, () => {
        const r = new BinaryReader(body, what);
        const version = r.u8('version');
        if (version !== SESSION_PICKLE_VERSION) {
          throw badPickle(what, `expected version ${SESSION_PICKLE_VERSION}, got ${version}`);
        }
        const peer = new IdentityPublicKey(r.fixed(32, 'peer identity'));
        const count = r.u8('state count');
        if (count < 1 || count > 1 + MAX_ARCHIVED_SESSION_STATES) {
          throw badPickle(what, `expected 1 to ${1 + MAX_ARCHIVED_SESSION_STATES} states, got ${count}`);
        }
        const states: { setupId: string; pending: PrekeyHeader | undefined; ratchet: Uint8Array }[] = [];
        for (let i = 0; i < count; i++) {
          const setupId = toHex(r.fixed(32, 'setup id'));
          const flag = r.u8('pending flag');
          if (flag > 1) throw badPickle(what, `pending flag must be 0 or 1, got ${flag}`);
          const pending =
            flag === 1
              ? decodePrekeyHeader(
                  r.bounded(r.u16('pending header length'), MAX_PREKEY_HEADER_BYTES, 'pending header'),
                )
              : undefined;
          const ratchet = r.bounded(
            r.u32('ratchet pickle length'),
            MAX_RATCHET_PICKLE_BYTES,
            'ratchet pickle',
          );
          states.push({ setupId, pending, ratchet });
        }
        const retiredCount = r.u8('retired count');
        if (retiredCount > MAX_REMEMBERED_SETUP_IDS) {
          throw badPickle(what, `at most ${MAX_REMEMBERED_SETUP_IDS} retired setup ids, got ${retiredCount}`);
        }
        const retired: string[] = [];
        for (let i = 0; i < retiredCount; i++) retired.push(toHex(r.fixed(32, 'retired setup id')));
        r.end();
        return { peer, states, retired };
      });
      const states: SessionState[] = [];
      for (const s of parsed.states) {
        let ratchet: DoubleRatchet;
        try {
          ratchet = await DoubleRatchet.fromPickle(s.ratchet);
        } catch (err) {
          throw CryptoError.is(err) ? badPickle(what, err.message) : err;
        } finally {
          wipe(s.ratchet);
        }
        states.push({ setupId: s.setupId, ratchet, pending: s.pending });
      }
      return new Session(parsed.peer, states, parsed.retired);
    } finally {
      wipe(body);
    }
  }

  toJSON(): string {
    return `Session(peer ${this.#peer.fingerprint()}, setup ${this.setupId.slice(0, 16)}, states ${this.#states.length}${this.awaitingReply ? ', awaiting reply' : ''})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }

  #serialize<T>(op: () => Promise<T>): Promise<T> {
    return this.#queue.run(op);
  }

  async #encrypt(plaintext: Uint8Array, context: Uint8Array | undefined): Promise<Uint8Array> {
    assertUint8Array(plaintext, 'plaintext');
    const state = this.#states[0]!;
    const headerBytes = state.pending ? MAX_PREKEY_HEADER_BYTES : 0;
    const limit = MAX_SESSION_MESSAGE_BYTES - 2 - headerBytes - RATCHET_MESSAGE_OVERHEAD;
    if (plaintext.length > limit) {
      throw new ProtocolError(
        ProtocolErrorCode.TooLarge,
        `session: a plaintext of ${plaintext.length} bytes exceeds the ${limit} a session message can hold`,
      );
    }
    let ratchetMessage: Uint8Array;
    try {
      ratchetMessage = await state.ratchet.encrypt(plaintext, context);
    } catch (err) {
      throw toProtocolError(err, 'session');
    }
    return encodeSessionMessage(
      state.pending
        ? { type: SessionMessageType.Prekey, header: state.pending, ratchetMessage }
        : { type: SessionMessageType.Ratchet, ratchetMessage },
    );
  }

  async #decrypt(
    message: Uint8Array,
    prekeys: PrekeyStore,
    context: Uint8Array | undefined,
  ): Promise<SessionDecryptResult> {
    const m = decodeSessionMessage(message);
    if (m.type === SessionMessageType.Ratchet) {
      const all = this.#states.map((_, i) => i);
      return { plaintext: await this.#decryptWith(all, m.ratchetMessage, context), startedNewSession: false };
    }
    checkSender(m.header, this.#peer);
    const setupId = setupIdOf(m.header);
    const known = this.#states.findIndex((s) => s.setupId === setupId);
    if (known >= 0) {
      // The initiator repeating its header (or a replay of it): the state it set up decides.
      return {
        plaintext: await this.#decryptWith([known], m.ratchetMessage, context),
        startedNewSession: false,
      };
    }
    if (this.#retired.includes(setupId)) {
      throw new ProtocolError(ProtocolErrorCode.Replay, SessionMessages.replayedInitialMessage());
    }
    const { ratchet, plaintext } = await acceptSetup(prekeys, m.header, m.ratchetMessage, context);
    this.#adopt({ setupId, ratchet, pending: undefined });
    return { plaintext, startedNewSession: true };
  }

  /** Tries the states at `indices` in order; the first that decrypts is promoted to current. */
  async #decryptWith(
    indices: readonly number[],
    ratchetMessage: Uint8Array,
    context: Uint8Array | undefined,
  ): Promise<Uint8Array> {
    let refusal: unknown;
    for (const i of indices) {
      const state = this.#states[i]!;
      let plaintext: Uint8Array;
      try {
        plaintext = await state.ratchet.decrypt(ratchetMessage, context);
      } catch (err) {
        if (!CryptoError.is(err)) throw err;
        // "Not this state's" is expected while trying states; any other refusal is the answer.
        if (!CryptoError.is(err, CryptoErrorCode.UnknownHeaderKey)) refusal ??= err;
        continue;
      }
      // The peer sent in this state, so it holds it: stop repeating the prekey header.
      state.pending = undefined;
      if (i > 0) this.#states = [state, ...this.#states.filter((s) => s !== state)];
      return plaintext;
    }
    if (CryptoError.is(refusal, CryptoErrorCode.DuplicateMessage)) {
      throw new ProtocolError(ProtocolErrorCode.Replay, SessionMessages.replayedMessage());
    }
    if (refusal !== undefined) throw toProtocolError(refusal, 'session');
    throw new ProtocolError(ProtocolErrorCode.NoSession, SessionMessages.noSessionForRatchetMessage());
  }

  /** Makes `state` current; the oldest beyond the archive's size is forgotten, its id remembered. */
  #adopt(state: SessionState): void {
    const states = [state, ...this.#states];
    for (const dropped of states.splice(1 + MAX_ARCHIVED_SESSION_STATES)) this.#retired.push(dropped.setupId);
    this.#retired = this.#retired.slice(-MAX_REMEMBERED_SETUP_IDS);
    this.#states = states;
  }
}

function checkSender(header: PrekeyHeader, expected: IdentityPublicKey): void {
  if (!header.identityKey.equals(expected)) {
    throw new ProtocolError(
      ProtocolErrorCode.IdentityMismatch,
      SessionMessages.senderIdentityMismatch(expected.fingerprint(), header.identityKey.fingerprint()),
    );
  }
}
