/**
 * @signalapp/libsignal-client (native Rust, the reference implementation) as the crypto peer:
 * two parties with in-memory stores, a PQXDH session set up from a prekey bundle that carries a
 * one-time EC prekey and a signed Kyber prekey, and a send/receive pair over serialized bytes
 * (the wire form, as ours: encrypt returns bytes, decrypt parses them).
 *
 * The stores keep SessionRecord objects as they are, without serializing them, which is the
 * fastest a store can be: libsignal's figures here are an upper bound for a real client.
 */
import {
  CiphertextMessageType,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';

class MemorySessionStore extends SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();
  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.#sessions.set(name.toString(), record);
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.#sessions.get(name.toString()) ?? null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return addresses.map((a) => {
      const record = this.#sessions.get(a.toString());
      if (!record) throw new Error(`libsignal peer: no session for ${a.toString()}`);
      return record;
    });
  }
  /** The session with `name` (for the serialize benchmark). */
  get(name: ProtocolAddress): SessionRecord | undefined {
    return this.#sessions.get(name.toString());
  }
}

class MemoryIdentityStore extends IdentityKeyStore {
  readonly #known = new Map<string, PublicKey>();
  constructor(
    private readonly identity: IdentityKeyPair,
    private readonly registrationId: number,
  ) {
    super();
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return this.identity.privateKey;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const previous = this.#known.get(name.toString());
    this.#known.set(name.toString(), key);
    return previous && !previous.equals(key)
      ? IdentityChange.ReplacedExisting
      : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(name: ProtocolAddress, key: PublicKey): Promise<boolean> {
    const known = this.#known.get(name.toString());
    return !known || known.equals(key);
  }
  async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    return this.#known.get(name.toString()) ?? null;
  }
}

class MemoryPreKeyStore extends PreKeyStore {
  readonly #keys = new Map<number, PreKeyRecord>();
  async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.#keys.set(id, record);
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    const record = this.#keys.get(id);
    if (!record) throw new Error(`libsignal peer: no prekey ${id}`);
    return record;
  }
  async removePreKey(id: number): Promise<void> {
    this.#keys.delete(id);
  }
}

class MemorySignedPreKeyStore extends SignedPreKeyStore {
  readonly #keys = new Map<number, SignedPreKeyRecord>();
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.#keys.set(id, record);
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const record = this.#keys.get(id);
    if (!record) throw new Error(`libsignal peer: no signed prekey ${id}`);
    return record;
  }
}

class MemoryKyberPreKeyStore extends KyberPreKeyStore {
  readonly #keys = new Map<number, KyberPreKeyRecord>();
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord): Promise<void> {
    this.#keys.set(id, record);
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    const record = this.#keys.get(id);
    if (!record) throw new Error(`libsignal peer: no Kyber prekey ${id}`);
    return record;
  }
  async markKyberPreKeyUsed(): Promise<void> {}
}

/** One party: its address, identity and stores. */
export class LibsignalParty {
  readonly address: ProtocolAddress;
  readonly identity = IdentityKeyPair.generate();
  readonly registrationId: number;
  readonly sessions = new MemorySessionStore();
  readonly identities: MemoryIdentityStore;
  readonly preKeys = new MemoryPreKeyStore();
  readonly signedPreKeys = new MemorySignedPreKeyStore();
  readonly kyberPreKeys = new MemoryKyberPreKeyStore();

  constructor(name: string, registrationId: number) {
    this.address = ProtocolAddress.new(name, 1);
    this.registrationId = registrationId;
    this.identities = new MemoryIdentityStore(this.identity, registrationId);
  }

  /** Generates and stores a one-time prekey, a signed prekey and a signed Kyber prekey. */
  publishBundle(): PreKeyBundle {
    const preKey = PrivateKey.generate();
    const signedPreKey = PrivateKey.generate();
    const signedPreKeySignature = this.identity.privateKey.sign(signedPreKey.getPublicKey().serialize());
    const kyber = KEMKeyPair.generate();
    const kyberSignature = this.identity.privateKey.sign(kyber.getPublicKey().serialize());
    const timestamp = Date.now();
    void this.preKeys.savePreKey(1, PreKeyRecord.new(1, preKey.getPublicKey(), preKey));
    void this.signedPreKeys.saveSignedPreKey(
      2,
      SignedPreKeyRecord.new(2, timestamp, signedPreKey.getPublicKey(), signedPreKey, signedPreKeySignature),
    );
    void this.kyberPreKeys.saveKyberPreKey(3, KyberPreKeyRecord.new(3, timestamp, kyber, kyberSignature));
    return PreKeyBundle.new(
      this.registrationId,
      1,
      1,
      preKey.getPublicKey(),
      2,
      signedPreKey.getPublicKey(),
      signedPreKeySignature,
      this.identity.publicKey,
      3,
      kyber.getPublicKey(),
      kyberSignature,
    );
  }

  /** signalEncrypt to `to`, serialized as it would go on the wire. */
  async encrypt(to: LibsignalParty, plaintext: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
    const message = await signalEncrypt(plaintext, to.address, this.address, this.sessions, this.identities);
    // One type byte in front, as an envelope would carry it.
    const body = message.serialize();
    const wire = new Uint8Array(body.length + 1);
    wire[0] = message.type();
    wire.set(body, 1);
    return wire;
  }

  /** Parses and decrypts what `from.encrypt` produced (PreKey or Whisper message). */
  async decrypt(from: LibsignalParty, wire: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
    const body = wire.subarray(1);
    if (wire[0] === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(body),
        from.address,
        this.address,
        this.sessions,
        this.identities,
        this.preKeys,
        this.signedPreKeys,
        this.kyberPreKeys,
      );
    }
    return signalDecrypt(
      SignalMessage.deserialize(body),
      from.address,
      this.address,
      this.sessions,
      this.identities,
    );
  }
}

/** Two fresh parties; nothing is set up between them yet. */
export function libsignalParties(): { alice: LibsignalParty; bob: LibsignalParty } {
  return {
    alice: new LibsignalParty('a1b2c3d4-0000-4000-8000-00000000000a', 1001),
    bob: new LibsignalParty('a1b2c3d4-0000-4000-8000-00000000000b', 1002),
  };
}

/**
 * Session setup as a client does it: Alice processes Bob's PQXDH bundle and sends a first
 * (PreKey) message, which Bob decrypts. Returns the two parties with an established session.
 */
export async function libsignalSession(
  first: Uint8Array<ArrayBuffer> = new Uint8Array(16),
): Promise<{ alice: LibsignalParty; bob: LibsignalParty }> {
  const { alice, bob } = libsignalParties();
  await processPreKeyBundle(
    bob.publishBundle(),
    bob.address,
    alice.address,
    alice.sessions,
    alice.identities,
  );
  await bob.decrypt(alice, await alice.encrypt(bob, first));
  return { alice, bob };
}
