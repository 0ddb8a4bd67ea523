/**
 * Browser entry for test/browser/crypto-in-browser.spec.ts: @usm/crypto, bundled by esbuild exactly as
 * an app would bundle it, exposed to the test as `globalThis.cryptoProbe`. The page only executes and
 * reports raw results (hex, error codes); every expected value and assertion lives in the spec.
 *
 * The page shows only the names of the checks it ran, never a key or a plaintext.
 */
import {
  CryptoError,
  DoubleRatchet,
  IdentityPublicKey,
  aesGcm,
  deriveKeyFromPassphrase,
  fromHex,
  hkdf,
  hkdfExpand,
  hkdfExtract,
  identityKeyPairFromSecret,
  kemDecapsulate,
  kemEncapsulate,
  kemKeyPairFromSecret,
  ready,
  safetyNumber,
  sign,
  toHex,
  verify,
  x25519,
  x25519KeyPairFromSecret,
} from '@usm/crypto';
import { ratchetPair, text, utf8 } from '../../../libs/crypto/test/ratchet-kit.js';

/** Known-answer inputs, sent by the spec. */
export interface ProbeInput {
  readonly hkdf: { ikm: string; salt: string; info: string; length: number };
  readonly argon2id: { passphrase: string; salt: string; memoryKiB: number; iterations: number };
  /** RFC 8032 §7.1 test 1: libsodium's 64-byte secret key (seed || public key) and the message. */
  readonly ed25519: { secretKey: string; message: string };
  /** RFC 7748 §6.1: Alice's and Bob's secret scalars. */
  readonly x25519: { alice: string; bob: string };
  readonly xwingSeed: string;
  /** Two identities (Ed25519 public keys) and their stable ids, for a safety number. */
  readonly safety: { keyA: string; idA: string; keyB: string; idB: string };
  /** Key that encrypts the ratchet pickles at rest. */
  readonly pickleKey: string;
}

export interface RatchetReport {
  /** Every plaintext delivered, in delivery order, as `recipient:text`. */
  readonly delivered: string[];
  /** Times the sending side changed (each one a DH ratchet step). */
  readonly dhTurns: number;
  /** Error code of a replayed message (to the restored session). */
  readonly replayError: string;
  /** Error code of a message with one flipped bit. */
  readonly bitFlipError: string;
  /** Pickle bytes of the restored Bob equal a pickle of the original Bob at the same point. */
  readonly pickleRoundTripExact: boolean;
  /** Bob's session, pickled (encrypted with the pickle key), for Node to restore. */
  readonly bobPickle: string;
  /** A message from Alice that Bob has not yet received, for Node to decrypt. */
  readonly pendingForBob: string;
}

export interface ProbeReport {
  readonly secureContext: boolean;
  readonly aesBackend: string;
  readonly hkdf: { prk: string; okm: string; oneShot: string };
  readonly argon2id: string;
  readonly ed25519: {
    signature: string;
    verifies: boolean;
    tamperedVerifies: boolean;
  };
  readonly x25519: { alicePublic: string; bobPublic: string; aliceShared: string; bobShared: string };
  readonly xwing: {
    publicKey: string;
    ciphertext: string;
    encapsulatedSecret: string;
    decapsulatedSecret: string;
  };
  readonly safetyNumber: { aSide: string; bSide: string };
  readonly ratchet: RatchetReport;
}

/** One AES-GCM vector as the spec sends it (Wycheproof fields, hex). */
export interface AesVector {
  readonly tcId: number;
  readonly key: string;
  readonly iv: string;
  readonly aad: string;
  readonly msg: string;
  readonly ct: string;
  readonly tag: string;
  readonly result: 'valid' | 'invalid' | 'acceptable';
}

/** What the WebCrypto backend did with one vector: outputs as hex, refusals as error codes. */
export interface AesOutcome {
  readonly tcId: number;
  /** ct || tag from encrypt (valid vectors only). */
  readonly sealed?: string;
  /** The plaintext from decrypt, or `error:<code>`. */
  readonly opened: string;
}

const errorCode = (err: unknown): string =>
  CryptoError.is(err) ? err.code : `not a CryptoError: ${err instanceof Error ? err.name : typeof err}`;

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return errorCode(err);
  }
  return 'no error';
}

/** A conversation with several DH turns, reordering, a pickle round trip, a replay and a bit flip. */
async function conversation(pickleKey: Uint8Array): Promise<RatchetReport> {
  const pair = ratchetPair();
  const alice = pair.alice;
  let bob = pair.bob;
  const delivered: string[] = [];
  let dhTurns = 0;
  let lastSender: 'alice' | 'bob' | undefined;
  const send = async (from: 'alice' | 'bob', body: string) => {
    if (lastSender !== undefined && lastSender !== from) dhTurns++;
    lastSender = from;
    return (from === 'alice' ? alice : bob).encrypt(utf8(body));
  };
  const deliver = async (to: 'alice' | 'bob', message: Uint8Array) => {
    delivered.push(`${to}:${text(await (to === 'alice' ? alice : bob).decrypt(message))}`);
  };

  const a1 = await send('alice', 'a1');
  const a2 = await send('alice', 'a2');
  const a3 = await send('alice', 'a3');
  await deliver('bob', a1);
  await deliver('bob', a3); // a2 skipped: its key is kept
  await deliver('bob', a2);

  const b1 = await send('bob', 'b1');
  const b2 = await send('bob', 'b2');
  await deliver('alice', b2);
  await deliver('alice', b1);

  const a4 = await send('alice', 'a4');
  // Pickle Bob (encrypted at rest) and carry on with the restored session only.
  const saved = await bob.pickle(pickleKey);
  const restored = await DoubleRatchet.fromPickle(saved, pickleKey);
  const pickleRoundTripExact = toHex(await restored.pickle()) === toHex(await bob.pickle());
  bob = restored;
  await deliver('bob', a4);
  const replayError = await codeOf(() => bob.decrypt(a4));

  const b3 = await send('bob', 'b3');
  const flipped = b3.slice();
  flipped[flipped.length - 1]! ^= 0x01;
  const bitFlipError = await codeOf(() => alice.decrypt(flipped));
  await deliver('alice', b3);

  const a5 = await send('alice', 'a5');
  await deliver('bob', a5);
  const pendingForBob = await send('alice', 'a6 for node');
  const bobPickle = toHex(await bob.pickle(pickleKey));
  probeState.alice = alice; // stays live for receiveInBrowser()
  return {
    delivered,
    dhTurns,
    replayError,
    bitFlipError,
    pickleRoundTripExact,
    bobPickle,
    pendingForBob: toHex(pendingForBob),
  };
}

const probeState: { alice?: DoubleRatchet } = {};

async function run(input: ProbeInput): Promise<ProbeReport> {
  await ready();

  const prk = hkdfExtract(fromHex(input.hkdf.salt), fromHex(input.hkdf.ikm));
  const okm = hkdfExpand(prk, fromHex(input.hkdf.info), input.hkdf.length);
  const oneShot = hkdf(
    fromHex(input.hkdf.ikm),
    fromHex(input.hkdf.salt),
    fromHex(input.hkdf.info),
    input.hkdf.length,
  );

  const argon = await deriveKeyFromPassphrase(input.argon2id.passphrase, fromHex(input.argon2id.salt), {
    memoryKiB: input.argon2id.memoryKiB,
    iterations: input.argon2id.iterations,
  });

  const signer = identityKeyPairFromSecret(fromHex(input.ed25519.secretKey));
  const message = fromHex(input.ed25519.message);
  const signature = sign(signer, message);
  const tampered = signature.slice();
  tampered[0]! ^= 0x01;

  const xa = x25519KeyPairFromSecret(fromHex(input.x25519.alice));
  const xb = x25519KeyPairFromSecret(fromHex(input.x25519.bob));

  const kem = kemKeyPairFromSecret(fromHex(input.xwingSeed));
  const encapsulation = kemEncapsulate(kem.publicKey);
  const decapsulated = kemDecapsulate(kem.secretKey, encapsulation.ciphertext);

  const partyA = {
    identityKey: new IdentityPublicKey(fromHex(input.safety.keyA)),
    stableId: input.safety.idA,
  };
  const partyB = {
    identityKey: new IdentityPublicKey(fromHex(input.safety.keyB)),
    stableId: input.safety.idB,
  };

  const ratchet = await conversation(fromHex(input.pickleKey));
  show(['hkdf', 'argon2id', 'ed25519', 'x25519', 'x-wing', 'safety number', 'double ratchet']);

  return {
    secureContext: globalThis.isSecureContext,
    aesBackend: aesGcm().name,
    hkdf: { prk: toHex(prk), okm: toHex(okm), oneShot: toHex(oneShot) },
    argon2id: toHex(argon),
    ed25519: {
      signature: toHex(signature),
      verifies: verify(new IdentityPublicKey(signer.publicKey.bytes), message, signature),
      tamperedVerifies: verify(signer.publicKey, message, tampered),
    },
    x25519: {
      alicePublic: toHex(xa.publicKey.bytes),
      bobPublic: toHex(xb.publicKey.bytes),
      aliceShared: toHex(x25519(xa.secretKey, xb.publicKey)),
      bobShared: toHex(x25519(xb.secretKey, xa.publicKey)),
    },
    xwing: {
      publicKey: toHex(kem.publicKey.bytes),
      ciphertext: toHex(encapsulation.ciphertext),
      encapsulatedSecret: toHex(encapsulation.sharedSecret),
      decapsulatedSecret: toHex(decapsulated),
    },
    safetyNumber: { aSide: safetyNumber(partyA, partyB), bSide: safetyNumber(partyB, partyA) },
    ratchet,
  };
}

/** Alice (still live in the page) decrypts a reply that Node's restored Bob encrypted. */
async function receiveInBrowser(messageHex: string): Promise<string> {
  if (!probeState.alice) throw new Error('run() first');
  return text(await probeState.alice.decrypt(fromHex(messageHex)));
}

/** Runs AES-GCM vectors through the WebCrypto backend that ready() picked in this browser. */
async function aesGcmVectors(
  vectors: readonly AesVector[],
): Promise<{ backend: string; outcomes: AesOutcome[] }> {
  await ready();
  const backend = aesGcm();
  const outcomes: AesOutcome[] = [];
  for (const v of vectors) {
    const [key, iv, aad] = [fromHex(v.key), fromHex(v.iv), fromHex(v.aad)];
    const sealed =
      v.result === 'valid' ? toHex(await backend.encrypt(key, iv, fromHex(v.msg), aad)) : undefined;
    let opened: string;
    try {
      opened = toHex(await backend.decrypt(key, iv, fromHex(v.ct + v.tag), aad));
    } catch (err) {
      opened = `error:${errorCode(err)}`;
    }
    outcomes.push(sealed === undefined ? { tcId: v.tcId, opened } : { tcId: v.tcId, sealed, opened });
  }
  show([`aes-256-gcm (${backend.name}): ${vectors.length} vectors`]);
  return { backend: backend.name, outcomes };
}

/** Lists the checks that ran on the page, for the screenshot. Names only. */
function show(lines: string[]) {
  const app = document.getElementById('app');
  if (!app) return;
  if (!app.firstChild) {
    const heading = document.createElement('h1');
    heading.textContent = `@usm/crypto in ${navigator.userAgent.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? 'a browser'}`;
    app.append(heading, document.createElement('ul'));
  }
  const list = app.querySelector('ul')!;
  for (const line of lines) {
    const item = document.createElement('li');
    item.textContent = `ran: ${line}`;
    list.append(item);
  }
}

// Signals the page is ready only once the WASM is loaded and the backend chosen.
await ready();
const probe = { run, receiveInBrowser, aesGcmVectors };
(globalThis as { cryptoProbe?: typeof probe }).cryptoProbe = probe;
export type CryptoProbe = typeof probe;
