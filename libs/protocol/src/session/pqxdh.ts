/**
 * The PQXDH key agreement (Signal's PQXDH specification, revision 3, 2024-01-23), with X-Wing as
 * pqkem, X25519 as curve, SHA-256 as hash, and its output handed to the Double Ratchet with header
 * encryption (Signal's Double Ratchet specification §4 and §7.2-style integration: SK, and the two
 * initial header keys, come from the same KDF).
 *
 * Deviations from the specification (docs/protocol.md, "Session setup", says why):
 *  - Identity keys are Ed25519 (RFC 8032), not XEdDSA curve keys (§2.1, §2.4): signatures are
 *    plain Ed25519, and for DH1/DH2 the identity keys are mapped to X25519 with the birational map
 *    of RFC 7748 §4.1 (libsodium's crypto_sign_ed25519_{pk,sk}_to_curve25519).
 *  - pqkem is X-Wing (ML-KEM-768 + X25519), not Kyber-1024: IND-CCA if either component is.
 *  - The KDF output is 96 bytes: SK (32) | HKa (32) | NHKb (32), the shared header keys that
 *    RatchetInitAliceHE/RatchetInitBobHE take; PQXDH's SK is the first 32.
 *  - The initial ciphertext is the first Double Ratchet message (its header key HKa and root key
 *    come from SK), not a separate AEAD under SK (§3.3's "initial ciphertext"): the tag that
 *    authenticates it is the ratchet's.
 *  - Signed data carries a domain-separation label and the prekey id (prekeys.ts).
 */
import {
  CryptoError,
  CryptoErrorCode,
  DoubleRatchet,
  type IdentityKeyPair,
  type IdentityPublicKey,
  concatBytes,
  generateX25519KeyPair,
  hkdf,
  identityToX25519KeyPair,
  identityToX25519PublicKey,
  kemDecapsulate,
  kemEncapsulate,
  wipe,
  x25519,
} from '@usm/crypto';
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { PQXDH_F, PQXDH_INFO, PQXDH_SALT } from './kdf-labels.js';
import type { PrekeyStore } from './prekey-store.js';
import { type SessionPrekeyBundle, verifyBundleSignatures } from './prekeys.js';
import { SessionMessages, toProtocolError, translated } from './session-errors.js';
import type { PrekeyHeader } from './session-message.js';

/** SK | HKa | NHKb. */
const KDF_OUTPUT_BYTES = 96;

interface SessionSecrets {
  readonly sharedSecret: Uint8Array;
  readonly initiatorHeaderKey: Uint8Array;
  readonly responderNextHeaderKey: Uint8Array;
}

/**
 * PQXDH §2.2 KDF(KM) = HKDF(IKM = F || KM, salt = 32 zero bytes, info), with
 * KM = DH1 || DH2 || DH3 [|| DH4] || SS (§3.3), expanded to SK | HKa | NHKb.
 * Every input is wiped, and the caller wipes the outputs once the ratchet holds its copies.
 */
function deriveSecrets(dhs: readonly Uint8Array[], ss: Uint8Array): SessionSecrets {
  const ikm = concatBytes(PQXDH_F, ...dhs, ss);
  try {
    const okm = hkdf(ikm, PQXDH_SALT, PQXDH_INFO, KDF_OUTPUT_BYTES);
    return {
      sharedSecret: okm.slice(0, 32),
      initiatorHeaderKey: okm.slice(32, 64),
      responderNextHeaderKey: okm.slice(64, 96),
    };
  } finally {
    wipe(ikm, ss, ...dhs);
  }
}

function wipeSecrets(s: SessionSecrets): void {
  wipe(s.sharedSecret, s.initiatorHeaderKey, s.responderNextHeaderKey);
}

/** PQXDH §3.3: AD = EncodeEC(IK_A) || EncodeEC(IK_B); here the Ed25519 keys' `version | type | key`. */
export function associatedDataOf(initiator: IdentityPublicKey, responder: IdentityPublicKey): Uint8Array {
  return concatBytes(initiator.encode(), responder.encode());
}

export interface InitiatedSetup {
  /** The initiator's ratchet, ready to send. */
  readonly ratchet: DoubleRatchet;
  /** What every message carries until the responder answers. */
  readonly header: PrekeyHeader;
}

/**
 * PQXDH §3.3, "Sending the initial message" (Alice). Throws IDENTITY_MISMATCH (the bundle is not
 * `expectedPeer`'s), BAD_SIGNATURE (a prekey signature), INVALID_KEY (a low-order or invalid key:
 * an all-zero DH output, an identity key that is no curve point, a refused KEM key).
 */
export function initiateSetup(
  identity: IdentityKeyPair,
  bundle: SessionPrekeyBundle,
  expectedPeer: IdentityPublicKey,
): InitiatedSetup {
  // §4.1 Authentication: the bundle must be the peer's whose identity the caller expects (and
  // ideally verified out of band, e.g. by safety numbers); the relay could hand out any bundle.
  if (!bundle.identityKey.equals(expectedPeer)) {
    throw new ProtocolError(
      ProtocolErrorCode.IdentityMismatch,
      SessionMessages.bundleIdentityMismatch(expectedPeer.fingerprint(), bundle.identityKey.fingerprint()),
    );
  }
  // IK_B must be a valid Ed25519 point of large order (libsodium's conversion refuses the others):
  // checked before the signatures, so a low-order identity key is named as INVALID_KEY.
  const ikB = translated('session setup', () => identityToX25519PublicKey(bundle.identityKey));
  // §3.3: "Alice verifies the prekey signatures and aborts the protocol if verification fails."
  verifyBundleSignatures(bundle);

  return translated('session setup', () => {
    const ikA = identityToX25519KeyPair(identity);
    const ek = generateX25519KeyPair();
    const spk = bundle.signedPrekey.publicKey;
    const dhs: Uint8Array[] = [];
    let secrets: SessionSecrets | undefined;
    try {
      // §3.3: DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
      // DH4 = DH(EK_A, OPK_B) when the bundle holds a one-time prekey. x25519 refuses an
      // all-zero output (RFC 7748 §6.1), which any low-order key forces: INVALID_KEY.
      dhs.push(x25519(ikA.secretKey, spk), x25519(ek.secretKey, ikB), x25519(ek.secretKey, spk));
      if (bundle.oneTimePrekey) dhs.push(x25519(ek.secretKey, bundle.oneTimePrekey.publicKey));
      // §3.3: (CT, SS) = PQKEM-ENC(PQPK_B).
      const { ciphertext, sharedSecret } = kemEncapsulate(bundle.kemPrekey.publicKey);
      secrets = deriveSecrets(dhs, sharedSecret);
      // Double Ratchet §7.2 (integration with X3DH/PQXDH): SK is the first root key input, Bob's
      // signed prekey his first ratchet key, AD the associated data.
      const ratchet = DoubleRatchet.initAlice({
        ...secrets,
        remoteRatchetKey: spk,
        associatedData: associatedDataOf(identity.publicKey, bundle.identityKey),
      });
      const header: PrekeyHeader = {
        identityKey: identity.publicKey,
        ephemeralKey: ek.publicKey,
        signedPrekeyId: bundle.signedPrekey.id,
        ...(bundle.oneTimePrekey ? { oneTimePrekeyId: bundle.oneTimePrekey.id } : {}),
        kemPrekeyId: bundle.kemPrekey.id,
        kemPrekeyLastResort: bundle.kemPrekey.lastResort,
        kemCiphertext: ciphertext,
      };
      return { ratchet, header };
    } finally {
      // §3.3: "Alice deletes her ephemeral private key and the DH outputs."
      ek.secretKey.wipe();
      ikA.secretKey.wipe();
      wipe(...dhs);
      if (secrets) wipeSecrets(secrets);
    }
  });
}

export interface AcceptedSetup {
  readonly ratchet: DoubleRatchet;
  readonly plaintext: Uint8Array;
}

/**
 * PQXDH §3.4, "Receiving the initial message" (Bob): loads the private keys the header names,
 * repeats the DH and KEM computations and the KDF, and decrypts the first ratchet message. Only
 * when that authenticates are the one-time prekeys deleted (a forged initial message costs Bob
 * nothing). Throws BAD_PREKEY (unknown or used prekey), INVALID_KEY (low-order keys), BAD_MAC
 * (the initial message does not authenticate: e.g. a swapped or corrupted KEM ciphertext, which
 * ML-KEM's implicit rejection turns into a different SS, hence different keys).
 * The caller has checked that IK_A is the expected peer's.
 */
export async function acceptSetup(
  store: PrekeyStore,
  header: PrekeyHeader,
  ratchetMessage: Uint8Array,
  context?: Uint8Array,
): Promise<AcceptedSetup> {
  const spk = store.signedPrekeyKeyPair(header.signedPrekeyId);
  if (!spk) {
    throw new ProtocolError(
      ProtocolErrorCode.BadPrekey,
      SessionMessages.unknownSignedPrekey(header.signedPrekeyId),
    );
  }
  const opkId = header.oneTimePrekeyId;
  const opk = opkId === undefined ? undefined : store.oneTimePrekeyKeyPair(opkId);
  if (opkId !== undefined && !opk) {
    throw new ProtocolError(ProtocolErrorCode.BadPrekey, SessionMessages.unknownOneTimePrekey(opkId));
  }
  const kem = store.kemPrekeyKeyPair(header.kemPrekeyId, header.kemPrekeyLastResort);
  if (!kem) {
    throw new ProtocolError(
      ProtocolErrorCode.BadPrekey,
      SessionMessages.unknownKemPrekey(header.kemPrekeyId, !header.kemPrekeyLastResort),
    );
  }

  const ratchet = translated('session setup', () => {
    const ikA = identityToX25519PublicKey(header.identityKey);
    const ikB = identityToX25519KeyPair(store.identity);
    const ek = header.ephemeralKey;
    const dhs: Uint8Array[] = [];
    let secrets: SessionSecrets | undefined;
    try {
      // §3.4: the same DH1..DH4 from Bob's side.
      dhs.push(x25519(spk.secretKey, ikA), x25519(ikB.secretKey, ek), x25519(spk.secretKey, ek));
      if (opk) dhs.push(x25519(opk.secretKey, ek));
      // §3.4: SS = PQKEM-DEC(PQPKB, CT). Implicit rejection: a wrong CT yields a wrong SS, no error.
      const ss = kemDecapsulate(kem.secretKey, header.kemCiphertext);
      secrets = deriveSecrets(dhs, ss);
      return DoubleRatchet.initBob({
        ...secrets,
        ratchetKeyPair: spk,
        associatedData: associatedDataOf(header.identityKey, store.identityKey),
      });
    } finally {
      ikB.secretKey.wipe();
      wipe(...dhs);
      if (secrets) wipeSecrets(secrets);
    }
  });

  // §3.4: "Bob then attempts to decrypt the initial ciphertext using SK and AD. If the initial
  // ciphertext fails to decrypt, then Bob aborts the protocol and deletes SK." Its header key
  // (HKa) and message key both come from SK: wrong keys fail at the header (UNKNOWN_HEADER_KEY)
  // or, for a body that was tampered with alone, at the body's tag (BAD_MAC).
  let plaintext: Uint8Array;
  try {
    plaintext = await ratchet.decrypt(ratchetMessage, context);
  } catch (err) {
    if (
      CryptoError.is(err, CryptoErrorCode.UnknownHeaderKey) ||
      CryptoError.is(err, CryptoErrorCode.BadMac)
    ) {
      throw new ProtocolError(ProtocolErrorCode.BadMac, SessionMessages.initialMessageDoesNotAuthenticate());
    }
    throw toProtocolError(err, 'session setup');
  }

  // §3.4: "Bob deletes any one-time prekey private key that was used, for forward secrecy."
  // Checked again here: another initial message may have used it while this one decrypted.
  const kemOneTimeId = header.kemPrekeyLastResort ? undefined : header.kemPrekeyId;
  if (!store.consumeOneTimePrekeys(opkId, kemOneTimeId)) {
    throw new ProtocolError(
      ProtocolErrorCode.BadPrekey,
      opkId !== undefined && !store.oneTimePrekeyKeyPair(opkId)
        ? SessionMessages.unknownOneTimePrekey(opkId)
        : SessionMessages.unknownKemPrekey(header.kemPrekeyId, true),
    );
  }
  return { ratchet, plaintext };
}
