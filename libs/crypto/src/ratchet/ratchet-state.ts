/**
 * The Double Ratchet state (Signal spec §3.2 and §4: DHRs, DHRr, RK, CKs, CKr, Ns, Nr, PN,
 * MKSKIPPED, HKs, HKr, NHKs, NHKr) and its versioned pickle.
 *
 * Pickle layout, format 1 (all integers big-endian):
 *
 *   outer:  kind (1: plain, 2: encrypted) | body
 *           encrypted body = AES-256-GCM(key, random nonce, plain pickle, AD = PICKLE_AD)
 *   plain:  version (1) | AD (u16 length + bytes) | RK (32) | DHRs secret (32)
 *           | DHRr (presence + 32) | CKs (presence + 32 + Ns u32) | HKs (presence + 32) | NHKs (32)
 *           | PN (u32) | NHKr (32) | chain count (u8, <= MAX_RECEIVING_CHAINS)
 *           | per chain: HKr (32) | DHRr of the chain (32) | CKr (presence + 32) | Nr (u32)
 *                        | skipped count (u16) | per key: N (u32) | MK (32)
 *
 * Pickles hold every secret of the session: keep them encrypted at rest (`key`), as the
 * client's stores do. Decoding checks every length and limit before it allocates and refuses
 * trailing bytes, with BAD_PICKLE naming the field; an unknown version is refused by name.
 */
import { assertBytes, concatBytes, wipe } from '../bytes.js';
import { openWithRandomNonce, sealWithRandomNonce, MessageKey } from '../encryption.js';
import { CryptoError, CryptoErrorCode } from '../errors.js';
import { x25519KeyPairFromSecret, type X25519KeyPair } from '../keygen.js';
import { X25519PublicKey } from '../keys.js';
import { ReceivingChainKey, SendingChainKey } from './chain-key.js';
import { PICKLE_AD } from './kdf-labels.js';
import { MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS } from './limits.js';
import { PickleReader, PickleWriter } from './pickle-codec.js';
import type { ReceivingChain } from './receiving-chain.js';
import { RootKey } from './root-key.js';

/** The version of the plain pickle layout written today. */
export const RATCHET_PICKLE_VERSION = 1;
/** Bytes of a key that encrypts pickles. */
export const PICKLE_KEY_BYTES = 32;

const KIND_PLAIN = 1;
const KIND_ENCRYPTED = 2;

export interface RatchetState {
  readonly associatedData: Uint8Array;
  /** RK */
  readonly rootKey: RootKey;
  /** DHRs */
  readonly ratchetKeyPair: X25519KeyPair;
  /** DHRr (undefined for a responder that has received nothing yet) */
  readonly remoteRatchetKey: X25519PublicKey | undefined;
  /** CKs with Ns as its index */
  readonly sendingChain: SendingChainKey | undefined;
  /** HKs */
  readonly sendingHeaderKey: Uint8Array | undefined;
  /** NHKs */
  readonly nextSendingHeaderKey: Uint8Array;
  /** PN */
  readonly previousSendingCount: number;
  /** Receiving chains, oldest first; the last is current (HKr, CKr, Nr) when it has a chain key. */
  readonly receivingChains: readonly ReceivingChain[];
  /** NHKr */
  readonly nextReceivingHeaderKey: Uint8Array;
}

function writePlain(s: RatchetState): Uint8Array {
  const w = new PickleWriter()
    .u8(RATCHET_PICKLE_VERSION)
    .bytes(s.associatedData)
    .fixed(s.rootKey.exportBytes())
    .fixed(s.ratchetKeyPair.secretKey.bytes)
    .optional(s.remoteRatchetKey?.bytes)
    .optional(s.sendingChain?.exportBytes());
  if (s.sendingChain) w.u32(s.sendingChain.index);
  w.optional(s.sendingHeaderKey)
    .fixed(s.nextSendingHeaderKey)
    .u32(s.previousSendingCount)
    .fixed(s.nextReceivingHeaderKey)
    .u8(s.receivingChains.length);
  for (const chain of s.receivingChains) {
    w.fixed(chain.headerKey)
      .fixed(chain.ratchetKey.bytes)
      .optional(chain.chainKey?.exportBytes())
      .u32(chain.nextIndex);
    w.u16(chain.skipped.size);
    for (const [n, mk] of chain.skipped) w.u32(n).fixed(mk.peek());
  }
  return w.finish();
}

function readPlain(bytes: Uint8Array): RatchetState {
  const r = new PickleReader(bytes);
  const version = r.u8('version');
  if (version !== RATCHET_PICKLE_VERSION) {
    throw new CryptoError(
      CryptoErrorCode.BadPickle,
      `pickle: expected version ${RATCHET_PICKLE_VERSION}, got ${version}`,
    );
  }
  const associatedData = r.bytes('associated data');
  const rootKey = new RootKey(r.fixed(32, 'root key'));
  const ratchetKeyPair = x25519KeyPairFromSecret(r.fixed(32, 'ratchet secret key'));
  const remote = r.optional(32, 'remote ratchet key');
  const sendingKey = r.optional(32, 'sending chain key');
  const sendingChain = sendingKey ? new SendingChainKey(sendingKey, r.u32('sending index')) : undefined;
  const sendingHeaderKey = r.optional(32, 'sending header key');
  const nextSendingHeaderKey = r.fixed(32, 'next sending header key');
  const previousSendingCount = r.u32('previous sending count');
  const nextReceivingHeaderKey = r.fixed(32, 'next receiving header key');
  const chainCount = r.u8('receiving chain count');
  if (chainCount > MAX_RECEIVING_CHAINS) {
    throw new CryptoError(
      CryptoErrorCode.BadPickle,
      `pickle: at most ${MAX_RECEIVING_CHAINS} receiving chains, got ${chainCount}`,
    );
  }
  const receivingChains: ReceivingChain[] = [];
  let totalSkipped = 0;
  for (let c = 0; c < chainCount; c++) {
    const headerKey = r.fixed(32, 'chain header key');
    const ratchetKey = new X25519PublicKey(r.fixed(32, 'chain ratchet key'));
    const chainKeyBytes = r.optional(32, 'receiving chain key');
    const nextIndex = r.u32('receiving index');
    const count = r.u16('skipped key count');
    totalSkipped += count;
    if (totalSkipped > MAX_SKIPPED_KEYS) {
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        `pickle: at most ${MAX_SKIPPED_KEYS} skipped keys, got at least ${totalSkipped}`,
      );
    }
    const skipped = new Map<number, MessageKey>();
    for (let k = 0; k < count; k++) {
      const n = r.u32('skipped key index');
      skipped.set(n, new MessageKey(r.fixed(32, 'skipped key'), n));
    }
    const chainKey = chainKeyBytes ? new ReceivingChainKey(chainKeyBytes, nextIndex) : undefined;
    receivingChains.push({ headerKey, ratchetKey, chainKey, nextIndex, skipped });
  }
  r.end();
  return {
    associatedData,
    rootKey,
    ratchetKeyPair,
    remoteRatchetKey: remote ? new X25519PublicKey(remote) : undefined,
    sendingChain,
    sendingHeaderKey,
    nextSendingHeaderKey,
    previousSendingCount,
    receivingChains,
    nextReceivingHeaderKey,
  };
}

/** The state as a pickle, encrypted under `key` when given. */
export async function encodeRatchetState(state: RatchetState, key?: Uint8Array): Promise<Uint8Array> {
  const plain = writePlain(state);
  if (key === undefined) return concatBytes(Uint8Array.of(KIND_PLAIN), plain);
  assertBytes(key, PICKLE_KEY_BYTES, 'pickle key');
  try {
    return concatBytes(Uint8Array.of(KIND_ENCRYPTED), await sealWithRandomNonce(key, plain, PICKLE_AD));
  } finally {
    wipe(plain);
  }
}

/** Reads a pickle; an encrypted one needs its `key` and fails with BAD_PICKLE under another. */
export async function decodeRatchetState(pickle: Uint8Array, key?: Uint8Array): Promise<RatchetState> {
  assertBytes(pickle, undefined, 'pickle');
  const kind = pickle[0];
  if (kind === KIND_PLAIN) {
    if (key !== undefined) {
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        'pickle: a key was given but the pickle is not encrypted',
      );
    }
    return readPlain(pickle.subarray(1));
  }
  if (kind === KIND_ENCRYPTED) {
    if (key === undefined) {
      throw new CryptoError(
        CryptoErrorCode.BadPickle,
        'pickle: the pickle is encrypted and no key was given',
      );
    }
    assertBytes(key, PICKLE_KEY_BYTES, 'pickle key');
    let plain: Uint8Array;
    try {
      plain = await openWithRandomNonce(key, pickle.subarray(1), PICKLE_AD);
    } catch (err) {
      if (CryptoError.is(err)) {
        throw new CryptoError(
          CryptoErrorCode.BadPickle,
          'pickle: cannot be decrypted with this key (or was modified)',
        );
      }
      throw err;
    }
    try {
      return readPlain(plain);
    } finally {
      wipe(plain);
    }
  }
  throw new CryptoError(
    CryptoErrorCode.BadPickle,
    `pickle: unknown kind ${kind ?? '(empty)'}; expected 1 or 2`,
  );
}
