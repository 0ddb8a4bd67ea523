/**
 * Test kit of the handshake specs (the `.test.ts` name keeps it out of the published build and
 * out of jest's `*.spec.ts` match): a controllable clock, fixtures, an error matcher, and the
 * attacker's tools, which build messages from the same codecs and key schedule with chosen
 * ephemerals, identities and signatures.
 */
import {
  type IdentityKeyPair,
  MessageKey,
  X25519PublicKey,
  concatBytes,
  openWithMessageKey,
  type X25519KeyPair,
  fromHex,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  randomBytes,
  ready,
  sealWithMessageKey,
  sha256Sync,
  sign,
  x25519,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import type { Clock } from './clock.js';
import { HandshakeClient } from './handshake-client.js';
import {
  decodeHandshakeInit,
  decodeHandshakeResponse,
  decodeRelayMaterial,
  encodeHandshakeComplete,
  encodeHandshakeResponse,
  encodeInitBody,
  encodeRelayMaterial,
  encodeResponseHeader,
} from './handshake-messages.js';
import { CLIENT_INIT_SIGNATURE_CONTEXT, CLIENT_SIGNATURE_CONTEXT } from './kdf-labels.js';
import { Transcript, deriveHandshakeKeys, finishedMac, signedContent } from './key-schedule.js';
import { RelayHandshake, type RelayHandshakeOptions } from './relay-handshake.js';
import { InMemoryReplayStore } from './replay-store.js';

export const MINUTE = 60_000;
/** 2023-11-14T22:13:20Z: any fixed instant; tests move it explicitly. */
export const T0 = 1_700_000_000_000;

export class FakeClock implements Clock {
  constructor(public ms = T0) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * X25519 public keys that force an all-zero shared secret (RFC 7748 §6.1; the points of small
 * order listed in Bernstein's "Curve25519" page and Wycheproof's x25519 "ZeroSharedSecret" /
 * "LowOrderPublic" tests): 0, 1, the two points of order 8, p - 1 (order 2), p and p + 1
 * (non-canonical 0 and 1).
 */
export const LOW_ORDER_POINTS: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

export interface World {
  clock: FakeClock;
  client: IdentityKeyPair;
  relay: IdentityKeyPair;
  store: InMemoryReplayStore;
  newClient(overrides?: {
    identity?: IdentityKeyPair;
    pinned?: IdentityKeyPair;
    clock?: Clock;
  }): HandshakeClient;
  newRelay(overrides?: Partial<RelayHandshakeOptions>): RelayHandshake;
}

export async function world(): Promise<World> {
  await ready();
  const clock = new FakeClock();
  const client = generateIdentityKeyPair();
  const relay = generateIdentityKeyPair();
  const store = new InMemoryReplayStore({ clock });
  return {
    clock,
    client,
    relay,
    store,
    newClient: (o = {}) =>
      new HandshakeClient({
        identity: o.identity ?? client,
        relayIdentity: (o.pinned ?? relay).publicKey,
        clock: o.clock ?? clock,
      }),
    newRelay: (o = {}) => new RelayHandshake({ identity: relay, replayStore: store, clock, ...o }),
  };
}

/** Runs the three messages; returns what each side concluded and the wire bytes. */
export async function handshake(client: HandshakeClient, relay: RelayHandshake) {
  const init = client.start();
  const response = await relay.receiveInit(init);
  const { complete, result: clientResult } = await client.receiveResponse(response);
  const relayResult = await relay.receiveComplete(complete);
  return { init, response, complete, clientResult, relayResult };
}

/** The error `run` throws or rejects with (fails the test when it succeeds). */
export async function errorOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure, but it succeeded');
}

/** Asserts a ProtocolError with exactly `code` (or one of `code`). Returns it. */
export async function expectProtocolError(
  run: () => unknown,
  code: ProtocolErrorCode | readonly ProtocolErrorCode[],
): Promise<ProtocolError> {
  const err = await errorOf(run);
  if (!(err instanceof ProtocolError)) {
    throw new Error(`expected a ProtocolError, got ${String(err)}`);
  }
  const codes = Array.isArray(code) ? code : [code];
  if (!codes.includes(err.code)) {
    throw new Error(`expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
  }
  return err;
}

/** A copy of `bytes` with `bytes[i] ^= mask`. */
export function flip(bytes: Uint8Array, i: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[i] = (out[i] as number) ^ mask;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The attacker's tools
// ---------------------------------------------------------------------------------------------

/** A correctly signed Init with a chosen ephemeral public key (e.g. a low-order point). */
export function signedInit(
  identity: IdentityKeyPair,
  ephemeral: X25519PublicKey,
  timestampMs: number,
  nonce = randomBytes(32),
): Uint8Array {
  const body = encodeInitBody({ ephemeral, identity: identity.publicKey, timestampMs, nonce });
  const signature = sign(identity, signedContent(CLIENT_INIT_SIGNATURE_CONTEXT, sha256Sync(body)));
  return concatBytes(body, signature);
}

/** An Init whose ephemeral the caller knows (for scripted clients). */
export function scriptedInit(identity: IdentityKeyPair, timestampMs: number) {
  const ephemeral = generateX25519KeyPair();
  return { ephemeral, init: signedInit(identity, ephemeral.publicKey, timestampMs) };
}

export interface ImpostorOptions {
  /** The impostor's ephemeral: a key pair it holds, or a raw public key it cannot use (low order). */
  ephemeral: X25519KeyPair | Uint8Array;
  /** The identity put into the sealed material. */
  claimedIdentity: IdentityKeyPair['publicKey'];
  /** The relay signature put into the sealed material. */
  signature: Uint8Array;
  timestampMs: number;
}

/**
 * A Response built by someone in the middle: its own ephemeral, then material sealed and a
 * Finished MAC computed under the keys of ITS DH with the client (all correct for that DH), but
 * with a relay signature it could not make itself.
 */
export async function impostorResponse(init: Uint8Array, o: ImpostorOptions): Promise<Uint8Array> {
  const ephemeralPublic =
    o.ephemeral instanceof Uint8Array ? new X25519PublicKey(o.ephemeral) : o.ephemeral.publicKey;
  const header = encodeResponseHeader({ ephemeral: ephemeralPublic, timestampMs: o.timestampMs });
  if (o.ephemeral instanceof Uint8Array) {
    // It cannot compute a DH with a low-order key: anything goes after the header.
    return encodeHandshakeResponse({
      ephemeral: ephemeralPublic,
      timestampMs: o.timestampMs,
      sealedMaterial: randomBytes(114),
      mac: randomBytes(32),
    });
  }
  const transcript = new Transcript().append(init, header);
  const thKeys = transcript.hash();
  const keys = deriveHandshakeKeys(
    x25519(o.ephemeral.secretKey, decodeHandshakeInit(init).ephemeral),
    thKeys,
  );
  transcript.append(o.claimedIdentity.encode());
  const mac = finishedMac(keys.relayFinishedKey, transcript.append(o.signature).hash());
  const sealedMaterial = await sealWithMessageKey(
    new MessageKey(keys.materialKey, 0),
    encodeRelayMaterial({ identity: o.claimedIdentity, signature: o.signature }),
    thKeys,
  );
  return encodeHandshakeResponse({
    ephemeral: ephemeralPublic,
    timestampMs: o.timestampMs,
    sealedMaterial,
    mac,
  });
}

/**
 * A client that follows the protocol with a key it knows (its ephemeral), opens the relay's
 * material, and builds a Complete with a valid Finished MAC over a signature of its choosing.
 * Returns the relay's signature too (what a MITM who is itself a client can learn).
 */
export async function scriptedComplete(
  init: Uint8Array,
  ephemeral: X25519KeyPair,
  responseBytes: Uint8Array,
  signComplete: (clientVerifyContent: Uint8Array) => Uint8Array,
) {
  const response = decodeHandshakeResponse(responseBytes);
  const transcript = new Transcript().append(init, encodeResponseHeader(response));
  const thKeys = transcript.hash();
  const keys = deriveHandshakeKeys(x25519(ephemeral.secretKey, response.ephemeral), thKeys);
  const material = decodeRelayMaterial(
    await openWithMessageKey(new MessageKey(keys.materialKey, 0), response.sealedMaterial, thKeys),
  );
  transcript.append(material.identity.encode(), material.signature, response.mac);
  const signature = signComplete(signedContent(CLIENT_SIGNATURE_CONTEXT, transcript.hash()));
  const mac = finishedMac(keys.clientFinishedKey, transcript.append(signature).hash());
  return { complete: encodeHandshakeComplete({ signature, mac }), relaySignature: material.signature };
}

export const lowOrderKeys = () => LOW_ORDER_POINTS.map((hex) => fromHex(hex));
