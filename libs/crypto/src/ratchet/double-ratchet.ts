/**
 * The Double Ratchet with header encryption: Signal's specification, revision 4 (2025), §4
 * (RatchetInitAliceHE, RatchetInitBobHE, RatchetEncryptHE, RatchetDecryptHE,
 * TrySkippedMessageKeysHE, DecryptHeader, SkipMessageKeysHE, DHRatchetHE), with §5.2's
 * recommended functions and AES-256-GCM as the AEAD.
 *
 * Differences from the pseudocode, none of which changes what goes on the wire:
 *  - Skipped keys are grouped by receiving chain (receiving-chain.ts), so a header is tried
 *    against each remembered header key once instead of once per skipped key.
 *  - Header keys are tried by likelihood: HKr and NHKr (NHKr first once we have sent on our
 *    current ratchet key, so that a reply costs one header trial), then the closed chains' keys
 *    (TrySkippedMessageKeysHE). Only the cost changes: one key opens a header, whatever the order.
 *  - Decryption is transactional: every step computes a new state on the side and the session
 *    adopts it only after the body's AEAD tag verified. A failed decryption changes nothing.
 *  - A message whose header opens under a known chain but whose key is gone is refused as
 *    DUPLICATE_MESSAGE (the spec only says "error").
 *  - Operations on one session run one at a time (AES-GCM is asynchronous in browsers).
 *
 * Over 400 lines on purpose: it is the §4 state machine, and its transitions share the state and
 * the transactional adopt-after-verify step; the parts that stand alone (chains, header, message,
 * state pickle, limits) have files of their own beside it.
 */
import { assertBytes, wipe } from '../bytes.js';
import { MessageKey, openWithMessageKey, sealWithMessageKey } from '../encryption.js';
import { SerialQueue } from '../serial-queue.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';
import { generateX25519KeyPair, x25519, type X25519KeyPair } from '../keygen.js';
import { KeyType, SecretKey, X25519PublicKey } from '../keys.js';
import type { ReceivingChainKey } from './chain-key.js';
import { assertSkipWithinLimit } from './chain-key.js';
import { openHeader, sealHeader, type Header } from './header.js';
import { decodeRatchetState, encodeRatchetState, type RatchetState } from './ratchet-state.js';
import { bodyAssociatedData, decodeRatchetMessage, encodeRatchetMessage } from './ratchet-message.js';
import { enforceLimits, withSkipped, withoutSkipped, type ReceivingChain } from './receiving-chain.js';
import { RootKey } from './root-key.js';

export const SHARED_SECRET_BYTES = 32;
export const HEADER_KEY_BYTES = 32;

/** What the initiator (Alice) of a session brings: the output of session setup (PQXDH). */
export interface InitiatorParams {
  /** SK: the 32-byte shared secret of session setup (becomes the first root key's input). */
  readonly sharedSecret: Uint8Array;
  /** The responder's signed prekey, used as its first ratchet public key. */
  readonly remoteRatchetKey: X25519PublicKey;
  /** shared_hka: the header key of the initiator's first sending chain. */
  readonly initiatorHeaderKey: Uint8Array;
  /** shared_nhkb: the header key of the responder's first sending chain. */
  readonly responderNextHeaderKey: Uint8Array;
  /** AD: binds both identities (e.g. Encode(IK_A) | Encode(IK_B)) into every message. */
  readonly associatedData: Uint8Array;
}

/** What the responder (Bob) of a session brings. */
export interface ResponderParams {
  readonly sharedSecret: Uint8Array;
  /** The key pair of the signed prekey the initiator used: the responder's first ratchet key. */
  readonly ratchetKeyPair: X25519KeyPair;
  readonly initiatorHeaderKey: Uint8Array;
  readonly responderNextHeaderKey: Uint8Array;
  readonly associatedData: Uint8Array;
}

/** A new state plus the secrets the old one held and the new one no longer needs. */
interface Transition {
  readonly state: RatchetState;
  /** Wiped once the transition is committed; until then the old state may still use them. */
  readonly retire: { wipe(): void }[];
}

function checkParams(p: InitiatorParams | ResponderParams): void {
  assertBytes(p.sharedSecret, SHARED_SECRET_BYTES, 'shared secret');
  assertBytes(p.initiatorHeaderKey, HEADER_KEY_BYTES, 'initiator header key');
  assertBytes(p.responderNextHeaderKey, HEADER_KEY_BYTES, 'responder next header key');
  assertBytes(p.associatedData, undefined, 'associated data');
}

const bytesWiper = (bytes: Uint8Array) => ({ wipe: () => wipe(bytes) });

/**
 * One end of a Double Ratchet session with header encryption.
 *
 * @example
 * const alice = DoubleRatchet.initAlice({ sharedSecret, remoteRatchetKey: bobSpk.publicKey,
 *   initiatorHeaderKey, responderNextHeaderKey, associatedData });
 * const bob = DoubleRatchet.initBob({ sharedSecret, ratchetKeyPair: bobSpk,
 *   initiatorHeaderKey, responderNextHeaderKey, associatedData });
 * const wire = await alice.encrypt(new TextEncoder().encode('hi'));
 * await bob.decrypt(wire); // Uint8Array of 'hi'
 * const saved = await bob.pickle(storageKey); // later: await DoubleRatchet.fromPickle(saved, storageKey)
 */
export class DoubleRatchet {
  #state: RatchetState;
  readonly #queue = new SerialQueue();

  private constructor(state: RatchetState) {
    this.#state = state;
  }

  /** RatchetInitAliceHE: the initiator can send at once. */
  static initAlice(p: InitiatorParams): DoubleRatchet {
    checkParams(p);
    const dhs = generateX25519KeyPair();
    const dh = x25519(dhs.secretKey, p.remoteRatchetKey);
    try {
      const step = new RootKey(p.sharedSecret.slice()).advanceSending(dh);
      return new DoubleRatchet({
        associatedData: p.associatedData.slice(),
        rootKey: step.rootKey,
        ratchetKeyPair: dhs,
        remoteRatchetKey: p.remoteRatchetKey,
        sendingChain: step.chainKey,
        sendingHeaderKey: p.initiatorHeaderKey.slice(),
        nextSendingHeaderKey: step.nextHeaderKey,
        previousSendingCount: 0,
        receivingChains: [],
        nextReceivingHeaderKey: p.responderNextHeaderKey.slice(),
      });
    } finally {
      wipe(dh);
    }
  }

  /** RatchetInitBobHE: the responder sends only after the first message arrived. */
  static initBob(p: ResponderParams): DoubleRatchet {
    checkParams(p);
    // The session owns a copy: the signed prekey stays with its owner for other sessions.
    const { publicKey, secretKey } = p.ratchetKeyPair;
    const ratchetKeyPair = {
      publicKey,
      secretKey: new SecretKey(KeyType.X25519, secretKey.bytes.slice(), publicKey.bytes),
    };
    return new DoubleRatchet({
      associatedData: p.associatedData.slice(),
      rootKey: new RootKey(p.sharedSecret.slice()),
      ratchetKeyPair,
      remoteRatchetKey: undefined,
      sendingChain: undefined,
      sendingHeaderKey: undefined,
      nextSendingHeaderKey: p.responderNextHeaderKey.slice(),
      previousSendingCount: 0,
      receivingChains: [],
      nextReceivingHeaderKey: p.initiatorHeaderKey.slice(),
    });
  }

  /** Restores a session from `pickle()`'s bytes (decrypting them with `key` when given). */
  static async fromPickle(pickle: Uint8Array, key?: Uint8Array): Promise<DoubleRatchet> {
    return new DoubleRatchet(await decodeRatchetState(pickle, key));
  }

  /** The session state as versioned bytes, encrypted with `key` (32 bytes) when given. */
  pickle(key?: Uint8Array): Promise<Uint8Array> {
    return encodeRatchetState(this.#state, key);
  }

  /** True once this end can send (always for the initiator; after a first message for the responder). */
  get canSend(): boolean {
    return this.#state.sendingChain !== undefined;
  }

  /** How many skipped message keys this session holds (bounded by MAX_SKIPPED_KEYS). */
  get skippedKeyCount(): number {
    let n = 0;
    for (const chain of this.#state.receivingChains) n += chain.skipped.size;
    return n;
  }

  /**
   * RatchetEncryptHE. `context` is bound into the body's associated data (not sent): the
   * receiver must pass the same bytes to `decrypt` (e.g. the envelope's message id).
   */
  encrypt(plaintext: Uint8Array, context?: Uint8Array): Promise<Uint8Array> {
    assertBytes(plaintext, undefined, 'plaintext');
    if (context !== undefined) assertBytes(context, undefined, 'context');
    return this.#serialize(() => this.#encrypt(plaintext, context));
  }

  /**
   * RatchetDecryptHE. Throws UNKNOWN_HEADER_KEY (no known header key opens it),
   * DUPLICATE_MESSAGE (its key was used or evicted), JUMP_TOO_LARGE (more than MAX_SKIP ahead),
   * BAD_MAC (body tampered), INVALID_KEY or MALFORMED_INPUT; the session is unchanged then.
   */
  decrypt(message: Uint8Array, context?: Uint8Array): Promise<Uint8Array> {
    if (context !== undefined) assertBytes(context, undefined, 'context');
    return this.#serialize(() => this.#decrypt(message, context));
  }

  toJSON(): string {
    const s = this.#state;
    return `DoubleRatchet(sending #${s.sendingChain?.index ?? '-'}, receiving chains ${s.receivingChains.length})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }

  #serialize<T>(op: () => Promise<T>): Promise<T> {
    return this.#queue.run(op);
  }

  #commit(t: Transition): void {
    this.#state = t.state;
    for (const secret of t.retire) secret.wipe();
  }

  async #encrypt(plaintext: Uint8Array, context: Uint8Array | undefined): Promise<Uint8Array> {
    const s = this.#state;
    if (!s.sendingChain || !s.sendingHeaderKey) {
      throw new CryptoError(
        CryptoErrorCode.SessionNotReady,
        'ratchet: the responder can send only after the first message from the initiator arrived',
      );
    }
    // KDF_CK, then the state moves on before anything is encrypted, so a message key is never
    // derived twice from a live session (encryption.ts explains why that matters for GCM).
    const { messageKey, chainKey } = s.sendingChain.next();
    this.#commit({ state: { ...s, sendingChain: chainKey }, retire: [s.sendingChain] });
    const header: Header = {
      dh: s.ratchetKeyPair.publicKey.bytes,
      pn: s.previousSendingCount,
      n: messageKey.index,
    };
    const encryptedHeader = await sealHeader(s.sendingHeaderKey, header, s.associatedData);
    const body = await sealWithMessageKey(
      messageKey,
      plaintext,
      bodyAssociatedData(s.associatedData, encryptedHeader, context),
    );
    return encodeRatchetMessage(encryptedHeader, body);
  }

  async #decrypt(message: Uint8Array, context: Uint8Array | undefined): Promise<Uint8Array> {
    const { encryptedHeader, body } = decodeRatchetMessage(message);
    const s = this.#state;
    const ad = bodyAssociatedData(s.associatedData, encryptedHeader, context);

    // DecryptHeader with HKr (the current chain: a burst) and NHKr (the sender turned the DH
    // ratchet: a reply), then TrySkippedMessageKeysHE on the closed chains (late messages and
    // replays). Header keys are independent, so at most one opens a header: the order changes
    // only how many AES-GCM trials a message costs, never which key decrypts it.
    // A reply needs our current ratchet public key, which only our own messages carry: while
    // our sending chain has sent nothing, NHKr cannot open a header, so HKr goes first; once it
    // has sent, a reply is what usually comes next (a conversation), so NHKr goes first.
    const current = s.receivingChains.length - 1;
    const tryCurrent = async () =>
      current >= 0 ? this.#tryChain(s, current, encryptedHeader, body, ad) : undefined;
    const tryNext = async () => {
      const header = await openHeader(s.nextReceivingHeaderKey, encryptedHeader, s.associatedData);
      return header ? this.#decryptAfterDhRatchet(s, header, body, ad) : undefined;
    };
    const replyPossible = (s.sendingChain?.index ?? 0) > 0;
    for (const attempt of replyPossible ? [tryNext, tryCurrent] : [tryCurrent, tryNext]) {
      const plaintext = await attempt();
      if (plaintext !== undefined) return plaintext;
    }
    for (let i = current - 1; i >= 0; i--) {
      const plaintext = await this.#tryChain(s, i, encryptedHeader, body, ad);
      if (plaintext !== undefined) return plaintext;
    }
    throw new CryptoError(
      CryptoErrorCode.UnknownHeaderKey,
      `ratchet: no header key of this session opens the message (tried ${s.receivingChains.length + 1})`,
    );
  }

  /**
   * The message under receiving chain `i`: undefined when the chain's header key does not open
   * its header; its plaintext when it does (a skipped key, or the chain advanced to it).
   */
  async #tryChain(
    s: RatchetState,
    i: number,
    encryptedHeader: Uint8Array,
    body: Uint8Array,
    ad: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const chain = s.receivingChains[i]!;
    const header = await openHeader(chain.headerKey, encryptedHeader, s.associatedData);
    if (!header) return undefined;
    const skippedKey = chain.skipped.get(header.n);
    if (skippedKey) return this.#decryptSkipped(s, i, skippedKey, body, ad);
    if (chain.chainKey && header.n >= chain.nextIndex) {
      const advance = chain.chainKey.advanceTo(header.n);
      const chains = s.receivingChains.slice();
      chains[i] = withSkipped(
        { ...chain, chainKey: advance.chainKey, nextIndex: header.n + 1 },
        advance.skipped,
      );
      const bounded = enforceLimits(chains);
      return this.#finish(
        { ...s, receivingChains: bounded.chains },
        [chain.chainKey, ...bounded.evicted],
        advance.messageKey,
        [advance.chainKey, ...advance.skipped],
        body,
        ad,
      );
    }
    throw new CryptoError(
      CryptoErrorCode.DuplicateMessage,
      `ratchet: message ${header.n} of this chain was already decrypted (or its skipped key was evicted)`,
    );
  }

  /** TrySkippedMessageKeysHE's hit: a copy of the key is tried; the stored one goes on success. */
  async #decryptSkipped(
    s: RatchetState,
    chainIndex: number,
    stored: MessageKey,
    body: Uint8Array,
    ad: Uint8Array,
  ): Promise<Uint8Array> {
    const chains = s.receivingChains.slice();
    chains[chainIndex] = withoutSkipped(chains[chainIndex]!, stored.index);
    const trial = new MessageKey(stored.peek(), stored.index);
    return this.#finish({ ...s, receivingChains: chains }, [stored], trial, [], body, ad);
  }

  /** SkipMessageKeysHE(PN), DHRatchetHE, SkipMessageKeysHE(N), KDF_CK, DECRYPT. */
  async #decryptAfterDhRatchet(s: RatchetState, header: Header, body: Uint8Array, ad: Uint8Array) {
    // Limits first, before any work: the closing chain's tail and the new chain's jump.
    const current = s.receivingChains.at(-1);
    const currentKey = current?.chainKey;
    if (currentKey) assertSkipWithinLimit(currentKey.index, header.pn);
    assertSkipWithinLimit(0, header.n);

    const remoteRatchetKey = new X25519PublicKey(header.dh);
    const discardOnFailure: { wipe(): void }[] = [];
    try {
      const chains = s.receivingChains.slice();
      if (current && currentKey) {
        // SkipMessageKeysHE(state, header.pn) on the chain being closed.
        const tail = currentKey.skipUntil(header.pn);
        discardOnFailure.push(...tail);
        chains[chains.length - 1] = withSkipped(
          { ...current, chainKey: undefined, nextIndex: Math.max(currentKey.index, header.pn) },
          tail,
        );
      }

      // DHRatchetHE: a receiving step with the sender's new key, then a sending step with ours.
      const dhReceive = x25519(s.ratchetKeyPair.secretKey, remoteRatchetKey);
      const receiving = s.rootKey.advanceReceiving(dhReceive);
      wipe(dhReceive);
      const ratchetKeyPair = generateX25519KeyPair();
      discardOnFailure.push(receiving.rootKey, receiving.chainKey, bytesWiper(receiving.nextHeaderKey));
      discardOnFailure.push(ratchetKeyPair.secretKey);
      const dhSend = x25519(ratchetKeyPair.secretKey, remoteRatchetKey);
      const sending = receiving.rootKey.advanceSending(dhSend);
      wipe(dhSend);
      discardOnFailure.push(sending.rootKey, sending.chainKey, bytesWiper(sending.nextHeaderKey));

      // SkipMessageKeysHE(state, header.n) on the new chain, then KDF_CK for the message itself.
      const advance: { chainKey: ReceivingChainKey; skipped: MessageKey[]; messageKey: MessageKey } =
        receiving.chainKey.advanceTo(header.n);
      discardOnFailure.push(advance.chainKey, ...advance.skipped);
      chains.push(
        withSkipped(
          {
            headerKey: s.nextReceivingHeaderKey,
            ratchetKey: remoteRatchetKey,
            chainKey: advance.chainKey,
            nextIndex: header.n + 1,
            skipped: new Map(),
          },
          advance.skipped,
        ),
      );
      const bounded = enforceLimits(chains);

      const next: RatchetState = {
        associatedData: s.associatedData,
        rootKey: sending.rootKey,
        ratchetKeyPair,
        remoteRatchetKey,
        sendingChain: sending.chainKey,
        sendingHeaderKey: s.nextSendingHeaderKey,
        nextSendingHeaderKey: sending.nextHeaderKey,
        previousSendingCount: s.sendingChain?.index ?? 0,
        receivingChains: bounded.chains,
        nextReceivingHeaderKey: receiving.nextHeaderKey,
      };
      const retire: { wipe(): void }[] = [
        s.rootKey,
        receiving.rootKey,
        receiving.chainKey,
        s.ratchetKeyPair.secretKey,
      ];
      if (currentKey) retire.push(currentKey);
      if (s.sendingChain) retire.push(s.sendingChain);
      if (s.sendingHeaderKey) retire.push(bytesWiper(s.sendingHeaderKey));
      for (const dropped of forgottenChains(s.receivingChains, bounded.chains))
        retire.push(bytesWiper(dropped.headerKey));
      retire.push(...bounded.evicted);
      const plaintext = await this.#finish(next, retire, advance.messageKey, [], body, ad);
      discardOnFailure.length = 0;
      return plaintext;
    } finally {
      for (const secret of discardOnFailure) secret.wipe();
    }
  }

  /** DECRYPT(mk, ciphertext, AD | enc_header); adopts `next` only when the tag verifies. */
  async #finish(
    next: RatchetState,
    retire: { wipe(): void }[],
    messageKey: MessageKey,
    discardOnFailure: { wipe(): void }[],
    body: Uint8Array,
    ad: Uint8Array,
  ): Promise<Uint8Array> {
    let plaintext: Uint8Array;
    try {
      plaintext = await openWithMessageKey(messageKey, body, ad);
    } catch (err) {
      for (const secret of discardOnFailure) secret.wipe();
      throw err;
    }
    this.#commit({ state: next, retire });
    return plaintext;
  }
}

/** Chains of `before` that are no longer in `after` (forgotten past MAX_RECEIVING_CHAINS). */
function forgottenChains(
  before: readonly ReceivingChain[],
  after: readonly ReceivingChain[],
): ReceivingChain[] {
  const kept = new Set(after.map((c) => c.headerKey));
  return before.filter((c) => !kept.has(c.headerKey));
}
