/**
 * MessengerClient: what a frontend installs. One object per device identity: it keeps the
 * identity and prekeys in a ClientStore, holds the connection to one relay (pinned by its
 * identity key), sets up a PQXDH session per peer, sends through the persistent outbox, and
 * hands received messages to the application exactly once and in order per conversation.
 *
 * Delivery guarantees (DESIGN.md, Protocol 5; docs/client.md):
 *  - Receiving: a message's new ratchet state, its id (seen-id memory) and its plaintext (the
 *    local inbox) are written in ONE atomic batch before the relay is acked; the relay's
 *    redelivery of an acked-late message is recognised by id and acked again, never shown. The
 *    app gets inbox entries in sequence order per conversation (ReorderBuffer); an entry is
 *    deleted after the app's `message` listeners returned. After a restart, entries still in
 *    the inbox are delivered first.
 *    The one window: if the process dies while a `message` listener runs (or after it returned
 *    but before the entry's deletion was written), that message is handed over again on the next
 *    start. The app dedups by `message.id` where that matters.
 *  - Sending: `send` encrypts, then writes the advanced ratchet state and the envelope into the
 *    outbox in one atomic batch before the first try; the outbox retries with backoff until
 *    the relay acks (the relay dedups by message id) or the entry expires (EXPIRED).
 */
import {
  type IdentityKeyPair,
  IdentityPublicKey,
  fromHex,
  generateIdentityKeyPair,
  decodeIdentityKeyPair,
  ready,
  safetyNumber,
  wipe,
} from '@usm/crypto';
import {
  type AddressString,
  type ApplicationPayload,
  type Clock,
  LOW_PREKEY_THRESHOLD,
  MAX_ACKS_PER_CALL,
  MAX_APPLICATION_BODY_BYTES,
  MAX_ENVELOPES_PER_SEND,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_RECEIPT_IDS,
  MAX_SEND_BATCH_BYTES,
  type MailItem,
  type MailPush,
  type MessageIdString,
  PayloadKind,
  PrekeyStore,
  ProtocolError,
  ProtocolErrorCode,
  type Released,
  ReorderBuffer,
  SeenMessageIds,
  SendSequence,
  Session,
  type SessionPrekeyBundle,
  addressEquals,
  addressOf,
  asAddressString,
  bundleFromClaim,
  decodeEnvelope,
  encodeEnvelope,
  formatAddress,
  formatMessageId,
  generateMessageId,
  openApplicationPayload,
  parseAddress,
  parseMessageId,
  publishRequestOf,
  sealApplicationPayload,
  systemClock,
  type Address,
} from '@usm/protocol';
import type { BackoffOptions } from './backoff.js';
import {
  type ConversationMeta,
  IDENTITY_KEY,
  INBOX_PREFIX,
  type InboxEntry,
  PREKEYS_KEY,
  RECEIPT_PREFIX,
  decodeCounter,
  decodeInboxEntry,
  encodeCounter,
  encodeInboxEntry,
  inboxKey,
  peerOfKey,
  receiptKey,
  receiptPrefix,
  recvSeqKey,
  seenKey,
  sendSeqKey,
  sessionKey,
} from './client-records.js';
import {
  type ConnectionStatus,
  MAX_BINARY_ATTACHMENTS,
  RelayConnection,
  type SocketFactory,
} from './connection.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { TypedEmitter } from './events.js';
import { KeyedLock } from './locks.js';
import { decryptFailureOutcome } from './inbox/decrypt-failure.js';
import { MailIntake } from './inbox/mail-intake.js';
import { Outbox, type OutboxOptions } from './outbox/outbox.js';
import type { ClientStore, StoreEntry, WriteBatch } from './storage/client-store.js';

export interface MessengerClientOptions {
  /** The relay's socket.io URL, e.g. `https://relay.example.org`. */
  relayUrl: string;
  /**
   * The relay's Ed25519 identity key, pinned: hex of the 32-byte key (64 digits) or of its
   * 34-byte encoding, or an IdentityPublicKey. A relay that cannot prove it is refused.
   */
  relayIdentityKey: string | IdentityPublicKey;
  /** Where the identity, sessions, outbox and inbox live. The client does not close it. */
  store: ClientStore;
  /** Time for handshake timestamps, `sentAt` and expiry. @default the system clock */
  clock?: Clock;
  /** The reconnect schedule (full jitter). @default BACKOFF_DEFAULTS (500 ms base, x2, 30 s cap) */
  backoff?: BackoffOptions;
  /** Reconnect after the connection drops. @default true */
  reconnect?: boolean;
  /** Outbox bounds and retry schedule. @default OUTBOX_DEFAULTS (1,000 entries, 30 days) */
  outbox?: Pick<OutboxOptions, 'maxEntries' | 'ttlMs' | 'retry'>;
  /** How long a request waits for the relay's ack. @default 10000 */
  requestTimeoutMs?: number;
  /** How long a message ahead of a gap waits for it. @default DEFAULT_REORDER_TIMEOUT_MS (10 s) */
  reorderTimeoutMs?: number;
  /** Message ids remembered per conversation for dedup. @default 2000 */
  seenIdsPerConversation?: number;
  /** One-time prekeys generated per top-up (1..100). @default 50 */
  oneTimePrekeyBatch?: number;
  /** Signed and last-resort KEM prekeys older than this are replaced on connect. @default 604800000 (7 days) */
  signedPrekeyMaxAgeMs?: number;
  /** Least time between two automatic session resets with one peer. @default 60000 */
  autoResetIntervalMs?: number;
  /**
   * While connected, pending mail is also fetched this often, besides on every connect: a push
   * the relay could not deliver (a node or its adapter under strain) is then picked up without
   * waiting for a reconnect. @default 30000
   */
  fetchIntervalMs?: number;
  /** Makes the socket (tests). @default socket.io-client's `io` */
  socketFactory?: SocketFactory;
  /** Test hooks: not for applications. */
  hooks?: MessengerClientHooks;
}

export interface MessengerClientHooks {
  /** Runs after a received message's atomic batch is durable, before the relay ack and the app. */
  afterPersist?: (id: MessageIdString) => void | Promise<void>;
}

interface MessageBase {
  /** The sender's address, authenticated by the session (and stamped by the relay). */
  readonly from: AddressString;
  /** The sender's random message id: dedup by it if your handler must be idempotent. */
  readonly id: MessageIdString;
  /** The sender's per-conversation counter. */
  readonly sequence: number;
  /** The sender's clock when it sent, ms since the epoch (a claim, for display). */
  readonly sentAt: number;
  /** When this device decrypted it, ms since the epoch. */
  readonly receivedAt: number;
  /** True when it arrived after its gap had been given up (place it by `sentAt`). */
  readonly late: boolean;
  /** Sequence numbers given up just before this one (0 when none): "messages missing". */
  readonly skippedBefore: number;
}

export type IncomingMessage =
  | (MessageBase & { readonly kind: 'text'; readonly text: string })
  | (MessageBase & { readonly kind: 'bytes'; readonly bytes: Uint8Array });

export interface DeliveryReceipt {
  /** The peer that received and stored the message. */
  readonly to: AddressString;
  /** The id `send` resolved with. */
  readonly id: MessageIdString;
}

export interface MessengerClientEvents {
  message: (message: IncomingMessage) => void | Promise<void>;
  delivered: (receipt: DeliveryReceipt) => void | Promise<void>;
  connection: (status: ConnectionStatus) => void;
  error: (error: ClientError) => void;
}

interface Deferred {
  resolve: (value: { id: MessageIdString }) => void;
  reject: (err: unknown) => void;
}

/** Per-peer state, loaded from the store on first use; touched only under the peer's lock. */
interface Conversation {
  readonly peer: AddressString;
  readonly peerIdentity: IdentityPublicKey;
  session: Session | undefined;
  meta: ConversationMeta;
  seen: SeenMessageIds;
  reorder: ReorderBuffer<InboxEntry>;
  /** Entries pushed into `reorder` and not released yet, by inbox key. */
  held: Map<string, InboxEntry>;
  /** Released entries waiting for (or in) the app's handlers, in order. */
  queue: Released<InboxEntry>[];
  delivering: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  lastAutoResetAt: number;
  /**
   * Mail from this peer that does not decrypt yet and is not acked (decrypt-failure.ts: 'keep'),
   * by message id: tried again after each message of the peer that decrypts. At most
   * MAX_KEPT_PER_PEER; more stays at the relay only, and the next fetch brings it again.
   */
  kept: Map<MessageIdString, MailItem>;
  /** Ids already reported as DECRYPT_PENDING (reported once per client run). */
  reportedPending: Set<MessageIdString>;
}

const DEFAULT_SEEN_IDS = 2_000;
/** Undecryptable mail per peer kept in memory for a retry (the relay keeps all of it). */
const MAX_KEPT_PER_PEER = 200;
/** Ids per peer remembered as reported DECRYPT_PENDING, before that memory starts afresh. */
const MAX_REPORTED_PENDING = 2_000;
const DEFAULT_PREKEY_BATCH = 50;
const DEFAULT_AUTO_RESET_INTERVAL_MS = 60_000;
const DEFAULT_FETCH_INTERVAL_MS = 30_000;
/** Least time between two fetches started because a conversation has a gap. */
const GAP_FETCH_INTERVAL_MS = 1_000;
/** Pause before a sync that failed on a live connection runs again. */
const SYNC_RETRY_MS = 1_000;
const DEFAULT_SIGNED_PREKEY_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Tries of a `prekeys:claim` that got no reply in time, before `send` gives up (NOT_CONNECTED). */
const CLAIM_ATTEMPTS = 3;
/** How long delivered ids gather before one receipt carries them all. */
const RECEIPT_DELAY_MS = 50;
/** While offline, how often the outbox is checked for expired entries. */
const OFFLINE_EXPIRY_CHECK_MS = 30_000;
/** A relay refusal of one envelope that a retry cannot fix. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set([
  ProtocolErrorCode.Malformed,
  ProtocolErrorCode.TooLarge,
  ProtocolErrorCode.UnsupportedVersion,
]);

function invalid(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

function parsePinnedKey(key: string | IdentityPublicKey): IdentityPublicKey {
  if (key instanceof IdentityPublicKey) return key;
  if (typeof key === 'string' && /^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{68})$/.test(key)) {
    try {
      const bytes = fromHex(key.toLowerCase());
      return bytes.length === 32 ? new IdentityPublicKey(bytes) : IdentityPublicKey.decode(bytes);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        'relayIdentityKey: not an Ed25519 identity key',
        {
          cause: err,
        },
      );
    }
  }
  throw invalid('relayIdentityKey: expected an IdentityPublicKey or the hex of a 32-byte Ed25519 key');
}

/** A store that refuses every call once the client is closed, so a closed client writes nothing. */
function guardStore(store: ClientStore, isClosed: () => boolean): ClientStore {
  const check = (what: string) => {
    if (isClosed()) {
      throw new ClientError(ClientErrorCode.StoreClosed, `${what}: the client is closed; open a new one`);
    }
  };
  return {
    get: async (key) => (check('get'), store.get(key)),
    list: async (prefix) => (check('list'), store.list(prefix)),
    write: async (batch) => (check('write'), store.write(batch)),
    close: async () => undefined,
  };
}

/**
 * An end-to-end encrypted messenger client for one device.
 *
 * @example
 * const client = await MessengerClient.open({ relayUrl, relayIdentityKey, store: new MemoryStore() });
 * client.on('message', (m) => console.log(m.from, m.kind === 'text' ? m.text : m.bytes.length));
 * client.on('delivered', ({ to, id }) => markDelivered(to, id));
 * await client.connect();
 * const { id } = await client.send(bobAddress, 'hello');
 */
export class MessengerClient extends TypedEmitter<MessengerClientEvents> {
  /** This device's address: `<base64url identity key>.1`. Give it to your contacts. */
  readonly address: AddressString;
  readonly #self: Address;
  readonly #identity: IdentityKeyPair;
  readonly #prekeys: PrekeyStore;
  readonly #store: ClientStore;
  readonly #outbox: Outbox;
  readonly #clock: Clock;
  readonly #options: MessengerClientOptions;
  readonly #connection: RelayConnection;
  readonly #locks = new KeyedLock();
  readonly #conversations = new Map<string, Conversation>();
  readonly #deferred = new Map<string, Deferred>();
  readonly #connectWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  readonly #pendingAcks = new Set<MessageIdString>();
  readonly #receiptsScheduled = new Set<string>();
  #closed = false;
  #synced = false;
  #flushing = false;
  #flushAgain = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #toppingUp: Promise<void> | undefined;
  readonly #intake: MailIntake;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #gapFetchTimer: ReturnType<typeof setTimeout> | undefined;
  #lastGapFetchAt = -Infinity;
  #syncRetry: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    options: MessengerClientOptions,
    store: ClientStore,
    identity: IdentityKeyPair,
    prekeys: PrekeyStore,
    outbox: Outbox,
  ) {
    super();
    this.#options = options;
    this.#store = store;
    this.#identity = identity;
    this.#prekeys = prekeys;
    this.#outbox = outbox;
    this.#clock = options.clock ?? systemClock;
    this.#self = addressOf(identity.publicKey);
    this.address = formatAddress(this.#self);
    this.#intake = new MailIntake({
      fetchPage: (cursor) =>
        this.#connection.request(
          'fetch',
          cursor === null ? { limit: MAX_BINARY_ATTACHMENTS } : { cursor, limit: MAX_BINARY_ATTACHMENTS },
        ),
      process: (mail) => this.#receiveAll(mail),
      onError: (err) => {
        if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
      },
    });
    this.#connection = new RelayConnection({
      url: options.relayUrl,
      identity,
      relayIdentity: parsePinnedKey(options.relayIdentityKey),
      address: this.address,
      clock: this.#clock,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.socketFactory ? { socketFactory: options.socketFactory } : {}),
      onAuthenticated: () => void this.#sync(),
      onStatus: (status) => {
        if (status.state !== 'connected') this.#synced = false;
        // Every new connection fetches before it processes pushes (inbox/mail-intake.ts).
        this.#intake.reset();
        // Without reconnection nothing will try again: a pending connect() fails now.
        if (status.state === 'disconnected' && options.reconnect === false && status.reason !== 'closed') {
          this.#settleConnect(
            new ClientError(
              ClientErrorCode.NotConnected,
              `connect: the connection to the relay failed (${status.reason ?? 'dropped'}) and reconnect is off`,
            ),
          );
        }
        this.emit('connection', status);
      },
      onError: (err) => {
        this.#report(err);
        if (
          ClientError.is(err, ClientErrorCode.ClockSkew) ||
          ClientError.is(err, ClientErrorCode.HandshakeFailed)
        ) {
          this.#settleConnect(err);
        }
      },
      onPush: (event, payload) => {
        switch (event) {
          case 'mail':
            void this.#intake.pushed((payload as MailPush).mail);
            break;
          case 'mail:sync':
            this.#intake.sync().catch((err: unknown) => {
              if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
            });
            break;
          case 'prekeys:low':
            void this.#topUpPrekeys();
            break;
          default: {
            const unknown: never = event;
            return unknown;
          }
        }
      },
    });
  }

  /**
   * Loads the identity and prekeys from `store`, or creates them on first use, and restores the
   * outbox and the undelivered inbox. Does not connect.
   */
  static async open(options: MessengerClientOptions): Promise<MessengerClient> {
    if (typeof options !== 'object' || options === null)
      throw invalid('MessengerClient.open: expected options');
    if (typeof options.relayUrl !== 'string' || options.relayUrl.length === 0) {
      throw invalid('relayUrl: expected the relay URL');
    }
    parsePinnedKey(options.relayIdentityKey);
    const batch = options.oneTimePrekeyBatch ?? DEFAULT_PREKEY_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_ONE_TIME_PREKEYS_PER_PUBLISH) {
      throw invalid(`oneTimePrekeyBatch: expected 1 to ${MAX_ONE_TIME_PREKEYS_PER_PUBLISH}`);
    }
    await ready();
    const clock = options.clock ?? systemClock;
    let closed = false;
    const store = guardStore(options.store, () => closed);
    let identity: IdentityKeyPair;
    let prekeys: PrekeyStore;
    const storedIdentity = await store.get(IDENTITY_KEY);
    if (storedIdentity) {
      const storedPrekeys = await store.get(PREKEYS_KEY);
      try {
        identity = decodeIdentityKeyPair(storedIdentity);
        if (!storedPrekeys) throw new Error('no prekeys');
        prekeys = await PrekeyStore.fromPickle(storedPrekeys, identity, undefined, { clock });
      } catch (err) {
        throw new ClientError(
          ClientErrorCode.CorruptStore,
          'the stored identity or prekeys do not load; restore a backup of the store',
          { cause: err },
        );
      } finally {
        wipe(storedIdentity);
      }
    } else {
      identity = generateIdentityKeyPair();
      prekeys = PrekeyStore.create(identity, { clock });
      const secret = identity.secretKey.encode();
      try {
        await store.write({
          put: [
            [IDENTITY_KEY, secret],
            [PREKEYS_KEY, await prekeys.pickle()],
          ],
        });
      } finally {
        wipe(secret);
      }
    }
    const outbox = await Outbox.open(store, { ...options.outbox, clock });
    const client = new MessengerClient(options, store, identity, prekeys, outbox);
    client.#onClose = () => {
      closed = true;
    };
    await client.#restore();
    return client;
  }

  #onClose: () => void = () => undefined;

  /** True while the relay connection is up and authenticated. */
  get connected(): boolean {
    return this.#connection.connected;
  }

  /**
   * Connects (and keeps reconnecting with backoff): the handshake with the pinned relay, then
   * prekeys published or topped up, pending mail fetched (every page), and the outbox flushed.
   * Resolves once that first sync is done; rejects with CLOCK_SKEW or HANDSHAKE_FAILED when the
   * relay refuses us (reconnection goes on; call `close()` to stop), NOT_CONNECTED when the
   * connection fails and `reconnect` is false, or STORE_CLOSED on close.
   */
  connect(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError('connect'));
    if (this.#synced && this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#connectWaiters.push({ resolve, reject });
      this.#connection.start();
    });
  }

  /**
   * Encrypts `content` for `to` and queues it; resolves with the message id once the relay has
   * durably stored it. The first message to a peer needs a connection (to claim its prekey
   * bundle): NOT_CONNECTED otherwise. Later ones are queued offline and sent on reconnect.
   * Throws QUEUE_FULL (outbox at its bound: nothing queued), EXPIRED (not stored in time),
   * INVALID_ARGUMENT, RELAY_ERROR / PROTOCOL_VIOLATION (no usable bundle for the peer).
   */
  async send(to: string, content: string | Uint8Array): Promise<{ id: MessageIdString }> {
    this.#checkOpen('send');
    const peer = this.#checkPeer(to);
    let build: (sequence: number, sentAt: number) => ApplicationPayload;
    if (typeof content === 'string') {
      build = (sequence, sentAt) => ({ kind: PayloadKind.Text, sequence, sentAt, text: content });
    } else if (content instanceof Uint8Array) {
      if (content.length > MAX_APPLICATION_BODY_BYTES) {
        throw invalid(`send: ${content.length} bytes, the limit is ${MAX_APPLICATION_BODY_BYTES}`);
      }
      const bytes = content.slice();
      build = (sequence, sentAt) => ({ kind: PayloadKind.Bytes, sequence, sentAt, bytes });
    } else {
      throw invalid('send: content must be a string or a Uint8Array');
    }
    const id = await this.#locks.run(peer, async () => {
      const conv = await this.#conversation(peer);
      if (!conv.session) await this.#newSetup(conv);
      return this.#enqueue(conv, build, {}, true);
    });
    return this.#awaitStored(id);
  }

  /**
   * Starts a fresh session with `peer` from a newly claimed bundle and tells the peer (a
   * SessionReset message); resolves when the relay stored that message. Use it when a
   * conversation is wedged (DECRYPT_FAILED from that peer). Needs a connection. Both sides'
   * sequence numbers start again at 0; messages still in flight from the old session may fail
   * to decrypt (reported) or arrive late.
   */
  async resetSession(peerAddress: string): Promise<{ id: MessageIdString }> {
    this.#checkOpen('resetSession');
    const peer = this.#checkPeer(peerAddress);
    const id = await this.#locks.run(peer, async () => {
      const conv = await this.#conversation(peer);
      await this.#newSetup(conv);
      this.#restartSequences(conv, 0);
      conv.meta.sendNext = 0;
      const recv: StoreEntry = [recvSeqKey(peer), encodeCounter(0)];
      return this.#enqueue(
        conv,
        (sequence, sentAt) => ({ kind: PayloadKind.SessionReset, sequence, sentAt }),
        { put: [recv] },
        true,
      );
    });
    return this.#awaitStored(id);
  }

  /**
   * The 60-digit safety number of this identity and `peerAddress`'s (libsignal's numeric
   * fingerprint): both sides see the same digits; compare them out of band. Format with
   * `formatSafetyNumber` from @usm/crypto.
   */
  safetyNumber(peerAddress: string): string {
    const peer = this.#checkPeer(peerAddress);
    const stableId = (a: string) => a.slice(0, a.indexOf('.'));
    return safetyNumber(
      { identityKey: this.#identity.publicKey, stableId: stableId(this.address) },
      { identityKey: new IdentityPublicKey(parseAddress(peer).identityKey), stableId: stableId(peer) },
    );
  }

  /**
   * Disconnects and stops every timer. Queued messages stay in the outbox (their `send`
   * promises reject with STORE_CLOSED) and undelivered ones in the inbox, for the next `open`.
   * The store is left open: it belongs to the caller. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    this.#connection.stop();
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#gapFetchTimer);
    clearTimeout(this.#syncRetry);
    for (const conv of this.#conversations.values()) clearTimeout(conv.timer);
    const err = this.#closedError('send');
    for (const d of this.#deferred.values()) d.reject(err);
    this.#deferred.clear();
    this.#settleConnect(this.#closedError('connect'));
  }

  protected override listenerAdded(event: keyof MessengerClientEvents): void {
    if (event !== 'message' && event !== 'delivered') return;
    for (const conv of this.#conversations.values()) void this.#deliver(conv);
  }

  // -------------------------------------------------------------------------------------------
  // Conversations
  // -------------------------------------------------------------------------------------------

  /** Loads (once) the state of `peer`'s conversation. Call it under the peer's lock. */
  async #conversation(peer: AddressString): Promise<Conversation> {
    const cached = this.#conversations.get(peer);
    if (cached) return cached;
    const peerIdentity = new IdentityPublicKey(parseAddress(peer).identityKey);
    const [sessionBytes, sendBytes, recvBytes, seenBytes] = await Promise.all([
      this.#store.get(sessionKey(peer)),
      this.#store.get(sendSeqKey(peer)),
      this.#store.get(recvSeqKey(peer)),
      this.#store.get(seenKey(peer)),
    ]);
    let session: Session | undefined;
    if (sessionBytes) {
      try {
        session = await Session.fromPickle(sessionBytes);
        if (!session.peerIdentity.equals(peerIdentity)) throw new Error('session of another peer');
      } catch (err) {
        session = undefined;
        this.#report(
          new ClientError(
            ClientErrorCode.CorruptStore,
            'the stored session with this peer does not load; it is started afresh (resetSession)',
            { cause: err, peer },
          ),
        );
      } finally {
        wipe(sessionBytes);
      }
    }
    let meta: ConversationMeta = { sendNext: 0, recvNext: 0 };
    let seen = new SeenMessageIds(this.#options.seenIdsPerConversation ?? DEFAULT_SEEN_IDS);
    try {
      meta = {
        sendNext: sendBytes ? decodeCounter(sendBytes) : 0,
        recvNext: recvBytes ? decodeCounter(recvBytes) : 0,
      };
      if (seenBytes) seen = SeenMessageIds.decode(seenBytes);
    } catch (err) {
      this.#report(
        new ClientError(ClientErrorCode.CorruptStore, 'the stored conversation record does not load', {
          cause: err,
          peer,
        }),
      );
    }
    const conv: Conversation = {
      peer,
      peerIdentity,
      session,
      meta,
      seen,
      reorder: this.#newReorder(meta.recvNext),
      held: new Map(),
      queue: [],
      delivering: false,
      timer: undefined,
      lastAutoResetAt: -Infinity,
      kept: new Map(),
      reportedPending: new Set(),
    };
    this.#conversations.set(peer, conv);
    return conv;
  }

  #newReorder(next: number): ReorderBuffer<InboxEntry> {
    return new ReorderBuffer<InboxEntry>({
      next,
      now: () => this.#clock.now(),
      ...(this.#options.reorderTimeoutMs === undefined ? {} : { timeoutMs: this.#options.reorderTimeoutMs }),
    });
  }

  /** Forgets the cached state of a conversation (after a failed write), so it reloads from the store. */
  #invalidate(conv: Conversation): void {
    clearTimeout(conv.timer);
    if (this.#conversations.get(conv.peer) === conv) this.#conversations.delete(conv.peer);
  }

  /** A new session setup: held messages go to the app in order, then numbering starts at `recvNext`. */
  #restartSequences(conv: Conversation, recvNext: number): void {
    const held = [...conv.held.values()].sort((a, b) => a.sequence - b.sequence);
    for (const item of held)
      conv.queue.push({ sequence: item.sequence, item, skippedBefore: 0, late: false });
    conv.held.clear();
    clearTimeout(conv.timer);
    conv.reorder = this.#newReorder(recvNext);
    conv.meta.recvNext = recvNext;
    void this.#deliver(conv);
  }

  async #restore(): Promise<void> {
    const byPeer = new Map<AddressString, StoreEntry[]>();
    for (const entry of await this.#store.list(INBOX_PREFIX)) {
      const peer = peerOfKey(INBOX_PREFIX, entry[0]);
      byPeer.set(peer, [...(byPeer.get(peer) ?? []), entry]);
    }
    for (const [peer, entries] of byPeer) {
      await this.#locks.run(peer, async () => {
        const conv = await this.#conversation(peer);
        const items = entries.map(([key, value]) => ({ key, entry: decodeInboxEntry(peer, value) }));
        items.sort((a, b) => a.entry.sequence - b.entry.sequence);
        for (const { key, entry } of items) {
          // Below recvNext: released before the restart, not finished by the app: first, in order.
          if (entry.sequence < conv.meta.recvNext) {
            conv.queue.push({ sequence: entry.sequence, item: entry, skippedBefore: 0, late: false });
          } else {
            this.#push(conv, key, entry);
          }
        }
      });
    }
    for (const [key] of await this.#store.list(RECEIPT_PREFIX)) {
      this.#scheduleReceipts(peerOfKey(RECEIPT_PREFIX, key));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------------------------

  /**
   * Encrypts the payload `build` makes with the conversation's session and queues it in the
   * outbox, with the advanced session and sequence in the same atomic batch (plus `extra`).
   * Under the peer's lock. Returns the message id.
   */
  async #enqueue(
    conv: Conversation,
    build: (sequence: number, sentAt: number) => ApplicationPayload,
    extra: WriteBatch,
    awaited: boolean,
  ): Promise<MessageIdString> {
    const session = conv.session;
    if (!session) throw new ClientError(ClientErrorCode.InvalidArgument, 'no session with this peer');
    if (this.#outbox.remaining <= 0) {
      throw new ClientError(
        ClientErrorCode.QueueFull,
        `the outbox is full (${this.#outbox.size} messages wait for the relay); retry after some are delivered`,
        { peer: conv.peer },
      );
    }
    const sequence = new SendSequence(conv.meta.sendNext).take();
    const plaintext = sealApplicationPayload(build(sequence, this.#clock.now()));
    const idBytes = generateMessageId();
    const id = formatMessageId(idBytes);
    try {
      // The id is bound into the message's authentication (not sent twice): a relay that rewrites
      // it makes the message fail to decrypt instead of arriving under an id it never had.
      const ciphertext = await session.encrypt(plaintext, idBytes);
      const envelope = encodeEnvelope({ id: idBytes, recipient: parseAddress(conv.peer), ciphertext });
      conv.meta.sendNext = sequence + 1;
      const put: StoreEntry[] = [
        [sessionKey(conv.peer), await session.pickle()],
        [sendSeqKey(conv.peer), encodeCounter(conv.meta.sendNext)],
        ...(extra.put ?? []),
      ];
      if (awaited) this.#deferred.set(id, { resolve: () => undefined, reject: () => undefined });
      await this.#outbox.enqueue(
        { messageId: idBytes, recipient: conv.peer, envelope },
        { put, delete: extra.delete ?? [] },
      );
    } catch (err) {
      this.#deferred.delete(id);
      // The session advanced in memory but not in the store: reload it from the store.
      this.#invalidate(conv);
      throw err;
    } finally {
      wipe(plaintext);
    }
    void this.#flush();
    return id;
  }

  #awaitStored(id: MessageIdString): Promise<{ id: MessageIdString }> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(this.#closedError('send'));
      const d = this.#deferred.get(id);
      if (!d) return resolve({ id }); // acked already
      d.resolve = resolve;
      d.reject = reject;
    });
  }

  /** A new session setup with the conversation's peer (PQXDH, initiator side): first contact or reset. */
  async #newSetup(conv: Conversation): Promise<void> {
    const bundle = await this.#claim(conv.peer);
    try {
      if (conv.session) await conv.session.restart(this.#identity, bundle);
      else conv.session = Session.initiate(this.#identity, bundle, conv.peerIdentity);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.ProtocolViolation,
        `the prekey bundle the relay handed out for this peer is refused (${ProtocolError.is(err) ? err.code : 'invalid'}); nothing was sent`,
        { cause: err, peer: conv.peer },
      );
    }
  }

  /** Claims `peer`'s bundle; needs a connection. */
  async #claim(peer: AddressString): Promise<SessionPrekeyBundle> {
    if (!this.#connection.connected) {
      throw new ClientError(
        ClientErrorCode.NotConnected,
        'a first message to a peer needs a connection to the relay (to claim its prekeys); connect and retry',
        { peer },
      );
    }
    // A claim that got no reply in time is tried again while the connection holds (the relay
    // may have handed out a one-time prekey for it: one wasted key, no harm).
    let bundle;
    for (let attempt = 1; ; attempt++) {
      try {
        ({ bundle } = await this.#connection.request('prekeys:claim', { address: peer }));
        break;
      } catch (err) {
        const retry = ClientError.is(err, ClientErrorCode.NotConnected) && this.#connection.connected;
        if (!retry || attempt >= CLAIM_ATTEMPTS) throw err;
      }
    }
    try {
      if (bundle.address !== peer)
        throw new ProtocolError(ProtocolErrorCode.IdentityMismatch, 'bundle of another address');
      return bundleFromClaim(bundle);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.ProtocolViolation,
        "the relay's prekey bundle for this peer is not usable",
        {
          cause: err,
          peer,
        },
      );
    }
  }

  /** Sends what the outbox has due, while connected; one run at a time. */
  async #flush(): Promise<void> {
    if (this.#flushing) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#flushAgain = false;
        for (const gone of await this.#outbox.expire()) {
          const id = formatMessageId(gone.messageId);
          const err = new ClientError(
            ClientErrorCode.Expired,
            'a message expired before the relay stored it',
            {
              peer: gone.recipient,
              messageId: id,
            },
          );
          const d = this.#deferred.get(id);
          this.#deferred.delete(id);
          if (d) d.reject(err);
          this.#report(err);
        }
        if (!this.#connection.connected || this.#closed) break;
        const due = await this.#outbox.due();
        for (const batch of chunkEnvelopes(due)) {
          await this.#outbox.markAttempt(batch.map((e) => e.messageId));
          let results;
          try {
            ({ results } = await this.#connection.request('send', {
              envelopes: batch.map((e) => e.envelope),
            }));
          } catch (err) {
            // Retried by the outbox: a dropped socket, or a node shutting down / database down.
            const transient =
              ClientError.is(err, ClientErrorCode.NotConnected) ||
              ProtocolError.is((err as { cause?: unknown }).cause, ProtocolErrorCode.Unavailable);
            if (!transient) this.#report(err);
            break;
          }
          for (let i = 0; i < batch.length; i++) {
            const entry = batch[i]!;
            const outcome = results[i];
            const id = formatMessageId(entry.messageId);
            if (outcome?.status === 'stored' || outcome?.status === 'duplicate') {
              await this.#outbox.remove(entry.messageId);
              const d = this.#deferred.get(id);
              this.#deferred.delete(id);
              d?.resolve({ id });
            } else if (outcome?.status === 'rejected' && PERMANENT_REFUSALS.has(outcome.code)) {
              await this.#outbox.remove(entry.messageId);
              const err = new ClientError(
                ClientErrorCode.RelayError,
                `the relay refused a message (${outcome.code}): ${outcome.message}`,
                {
                  cause: new ProtocolError(outcome.code, outcome.message),
                  peer: entry.recipient,
                  messageId: id,
                },
              );
              const d = this.#deferred.get(id);
              this.#deferred.delete(id);
              if (d) d.reject(err);
              else this.#report(err);
            }
            // Anything else (quota, rate limit, unavailable, no reply) stays queued for a retry.
          }
        }
      } while (this.#flushAgain);
    } catch (err) {
      this.#report(err);
    } finally {
      this.#flushing = false;
      this.#scheduleFlush();
    }
  }

  #scheduleFlush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#closed) return;
    const at = this.#outbox.nextWakeAt();
    if (at === undefined) return;
    const now = this.#clock.now();
    const delay = this.#connection.connected
      ? Math.max(0, at - now)
      : Math.max(OFFLINE_EXPIRY_CHECK_MS, at - now);
    this.#flushTimer = setTimeout(() => void this.#flush(), Math.min(delay, 0x7fffffff));
  }

  // -------------------------------------------------------------------------------------------
  // Connection sync
  // -------------------------------------------------------------------------------------------

  /**
   * After each handshake: prekeys, every page of pending mail, the outbox. A step that fails while
   * the connection holds (a request timed out under load) runs the sync again after a pause, so a
   * connected client is never left half-synced.
   */
  async #sync(): Promise<void> {
    clearTimeout(this.#syncRetry);
    this.#syncRetry = undefined;
    try {
      await this.#syncPrekeys();
      await this.#fetchAll();
      await this.#outbox.rescheduleAll();
      await this.#flush();
      if (!this.#connection.connected) return; // dropped meanwhile: the next connect syncs again
      this.#synced = true;
      this.#settleConnect();
      this.#scheduleSweep();
    } catch (err) {
      if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
      if (this.#connection.connected && !this.#closed) {
        this.#syncRetry = setTimeout(() => void this.#sync(), SYNC_RETRY_MS);
      }
    }
  }

  /** The periodic fetch while connected (see `fetchIntervalMs`). */
  #scheduleSweep(): void {
    clearTimeout(this.#sweepTimer);
    if (this.#closed) return;
    this.#sweepTimer = setTimeout(() => {
      if (!this.#connection.connected || this.#closed) return; // the next connect fetches and re-arms
      this.#fetchAll()
        .catch((err: unknown) => {
          if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
        })
        .finally(() => this.#scheduleSweep());
    }, this.#options.fetchIntervalMs ?? DEFAULT_FETCH_INTERVAL_MS);
  }

  #settleConnect(err?: unknown): void {
    const waiters = this.#connectWaiters.splice(0);
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  async #syncPrekeys(): Promise<void> {
    const count = await this.#connection.request('prekeys:count', {});
    const maxAge = this.#options.signedPrekeyMaxAgeMs ?? DEFAULT_SIGNED_PREKEY_MAX_AGE_MS;
    let rotated = false;
    if (this.#clock.now() - this.#prekeys.signedPrekeyCreatedAt > maxAge) {
      // PQXDH §3.2 (Publishing keys): new signed and last-resort KEM prekeys "at some interval
      // (e.g. once a week or once a month)"; the store keeps the previous ones for mail in flight.
      await this.#locks.run('\u0000prekeys', async () => {
        this.#prekeys.rotateSignedPrekey();
        this.#prekeys.rotateLastResortKemPrekey();
        await this.#store.write({ put: [[PREKEYS_KEY, await this.#prekeys.pickle()]] });
      });
      rotated = true;
    }
    if (rotated || !count.hasSignedPrekey || !count.hasKemPrekey) {
      await this.#connection.request(
        'prekeys:publish',
        publishRequestOf({
          signedPrekey: this.#prekeys.signedPrekey,
          lastResortKemPrekey: this.#prekeys.lastResortKemPrekey,
        }),
      );
    }
    if (count.oneTimePrekeys < LOW_PREKEY_THRESHOLD) await this.#topUpPrekeys();
  }

  /** Generates, persists, then publishes a batch of one-time prekeys (one top-up at a time). */
  #topUpPrekeys(): Promise<void> {
    this.#toppingUp ??= this.#locks
      .run('\u0000prekeys', async () => {
        const n = this.#options.oneTimePrekeyBatch ?? DEFAULT_PREKEY_BATCH;
        const fresh = this.#prekeys.generateOneTimePrekeys(n);
        await this.#store.write({ put: [[PREKEYS_KEY, await this.#prekeys.pickle()]] });
        for (let i = 0; i < fresh.length; i += MAX_BINARY_ATTACHMENTS) {
          const oneTimePrekeys = fresh.slice(i, i + MAX_BINARY_ATTACHMENTS);
          await this.#connection.request('prekeys:publish', publishRequestOf({ oneTimePrekeys }));
        }
      })
      .catch((err: unknown) => {
        if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
      })
      .finally(() => {
        this.#toppingUp = undefined;
      });
    return this.#toppingUp;
  }

  /** Fetches every page of pending mail and processes it, in mailbox order with the pushes; one run at a time. */
  #fetchAll(): Promise<void> {
    return this.#intake.fetchAll();
  }

  // -------------------------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------------------------

  async #receiveAll(mail: readonly MailItem[]): Promise<void> {
    await Promise.all(
      mail.map((item) =>
        this.#locks.run(item.sender, () => this.#receive(item)).catch((err: unknown) => this.#report(err)),
      ),
    );
  }

  /**
   * One piece of mail, under the sender's lock: decrypt, persist, ack, queue for the app. When it
   * decrypted, the peer's kept mail (that did not decrypt yet) is tried again, oldest first, until
   * a round decrypts none.
   */
  async #receive(item: MailItem): Promise<void> {
    if ((await this.#receiveOne(item, false)) !== 'decrypted') return;
    const conv = this.#conversations.get(item.sender);
    let progress = true;
    while (progress && conv && conv.kept.size > 0 && !this.#closed) {
      progress = false;
      const kept = [...conv.kept.values()].sort((a, b) => byPosition(a, b));
      for (const k of kept) if ((await this.#receiveOne(k, true)) === 'decrypted') progress = true;
    }
  }

  /** `#receive` for one item; `retry`: an item of the peer's kept mail. */
  async #receiveOne(item: MailItem, retry: boolean): Promise<'decrypted' | 'kept' | 'done'> {
    if (this.#closed) return 'done';
    const peer = item.sender;
    let envelope;
    try {
      envelope = decodeEnvelope(item.envelope);
      if (!addressEquals(envelope.recipient, this.#self)) {
        throw new ProtocolError(ProtocolErrorCode.Malformed, 'mail addressed to another device');
      }
      if (peer === this.address)
        throw new ProtocolError(ProtocolErrorCode.Malformed, 'mail stamped with our own address');
      asAddressString(peer);
    } catch (err) {
      this.#report(
        new ClientError(
          ClientErrorCode.ProtocolViolation,
          'the relay delivered mail that is not ours to read; dropped',
          {
            cause: err,
            peer,
          },
        ),
      );
      if (envelope) this.#ack(formatMessageId(envelope.id));
      return 'done';
    }
    const id = formatMessageId(envelope.id);
    const conv = await this.#conversation(peer);
    if (conv.seen.has(envelope.id)) {
      conv.kept.delete(id);
      this.#ack(id); // a redelivery (our ack was lost or late): ack again, show nothing
      return 'done';
    }
    // Fetched again while kept: it is tried when the peer's next message decrypts.
    if (!retry && conv.kept.has(id)) return 'kept';
    let plaintext: Uint8Array;
    let prekeysChanged: boolean;
    const hadSession = conv.session !== undefined;
    try {
      if (conv.session) {
        const result = await conv.session.decrypt(envelope.ciphertext, this.#prekeys, envelope.id);
        plaintext = result.plaintext;
        prekeysChanged = result.startedNewSession;
      } else {
        // First contact: the relay-stamped sender must be the identity that set the session up.
        const accepted = await Session.accept(
          this.#prekeys,
          envelope.ciphertext,
          conv.peerIdentity,
          envelope.id,
        );
        conv.session = accepted.session;
        plaintext = accepted.plaintext;
        prekeysChanged = true;
      }
    } catch (err) {
      return this.#undecryptable(conv, item, id, err, hadSession);
    }
    conv.kept.delete(id);
    let payload: ApplicationPayload | undefined;
    try {
      payload = openApplicationPayload(plaintext);
    } catch {
      payload = undefined;
    } finally {
      wipe(plaintext);
    }
    conv.seen.add(envelope.id);
    const put: StoreEntry[] = [
      [sessionKey(peer), await conv.session.pickle()],
      [seenKey(peer), conv.seen.encode()],
    ];
    let entry: InboxEntry | undefined;
    const head = { peer, id, receivedAt: this.#clock.now() };
    if (payload?.kind === PayloadKind.Text) {
      entry = {
        ...head,
        kind: 'text',
        text: payload.text,
        sequence: payload.sequence,
        sentAt: payload.sentAt,
      };
    } else if (payload?.kind === PayloadKind.Bytes) {
      entry = {
        ...head,
        kind: 'bytes',
        bytes: payload.bytes,
        sequence: payload.sequence,
        sentAt: payload.sentAt,
      };
    } else if (payload?.kind === PayloadKind.DeliveryReceipt) {
      const ids = payload.messageIds.map((m) => formatMessageId(m));
      entry = { ...head, kind: 'receipt', ids, sequence: payload.sequence, sentAt: payload.sentAt };
    } else if (payload?.kind === PayloadKind.SessionReset) {
      // The peer started a new session: both directions number from 0 again (after this message).
      this.#restartSequences(conv, payload.sequence + 1);
      conv.meta.sendNext = 0;
    }
    const key = entry ? inboxKey(peer, entry.sequence, id) : undefined;
    if (entry && key) put.push([key, encodeInboxEntry(entry)]);
    if (payload?.kind === PayloadKind.SessionReset) {
      put.push([sendSeqKey(peer), encodeCounter(0)], [recvSeqKey(peer), encodeCounter(conv.meta.recvNext)]);
    }
    try {
      if (prekeysChanged) {
        // One-time prekeys were consumed: the prekey store goes into the same batch, its
        // pickle taken under the prekeys lock so that a later write never holds an older one.
        await this.#locks.run('\u0000prekeys', async () => {
          await this.#store.write({ put: [...put, [PREKEYS_KEY, await this.#prekeys.pickle()]] });
        });
      } else {
        await this.#store.write({ put });
      }
    } catch (err) {
      this.#invalidate(conv); // memory is ahead of the store: reload; the relay will redeliver
      throw err;
    }
    await this.#options.hooks?.afterPersist?.(id);
    if (this.#closed) return 'done';
    this.#ack(id);
    if (payload === undefined) {
      this.#report(
        new ClientError(
          ClientErrorCode.DecryptFailed,
          'a message decrypted but its content does not decode; dropped',
          {
            peer,
            messageId: id,
          },
        ),
      );
    }
    if (entry && key) this.#push(conv, key, entry);
    return 'decrypted';
  }

  /**
   * Mail that does not decrypt, handled by its error code (inbox/decrypt-failure.ts): what may
   * still decrypt is NOT acked (the relay keeps it; it is kept here too, within a bound, for a
   * retry) and reported once as DECRYPT_PENDING; what never can is acked and reported as
   * DECRYPT_FAILED. Neither is remembered as seen, so a tampered copy cannot shadow the genuine
   * message with the same id. A first contact that is not a prekey message (NO_SESSION with no
   * session at all: our state was lost) starts an automatic reset.
   */
  #undecryptable(
    conv: Conversation,
    item: MailItem,
    id: MessageIdString,
    err: unknown,
    hadSession: boolean,
  ): 'kept' | 'done' {
    if (this.#closed) return 'done';
    const outcome = decryptFailureOutcome(err, hadSession);
    const code = ProtocolError.is(err) ? err.code : 'unexpected';
    if (outcome === 'keep') {
      if (conv.kept.has(id) || conv.kept.size < MAX_KEPT_PER_PEER) conv.kept.set(id, item);
      if (!conv.reportedPending.has(id)) {
        if (conv.reportedPending.size >= MAX_REPORTED_PENDING) conv.reportedPending.clear();
        conv.reportedPending.add(id);
        this.#report(
          new ClientError(
            ClientErrorCode.DecryptPending,
            `a message from this peer does not decrypt yet (${code}); it stays at the relay and is tried again as more mail from this peer arrives`,
            { cause: err, peer: conv.peer, messageId: id },
          ),
        );
      }
      return 'kept';
    }
    conv.kept.delete(id);
    this.#ack(id);
    if (outcome === 'ack-silently') return 'done';
    const reset = outcome === 'drop-and-reset';
    this.#report(
      new ClientError(
        ClientErrorCode.DecryptFailed,
        `a message from this peer does not decrypt (${code}); it was dropped` +
          (reset ? ': no session with this peer is stored, a new one is being set up' : ''),
        { cause: err, peer: conv.peer, messageId: id },
      ),
    );
    if (reset) this.#autoReset(conv);
    return 'done';
  }

  /** Resets a session the peer's messages no longer open, at most once per interval, not while one awaits a reply. */
  #autoReset(conv: Conversation): void {
    const now = this.#clock.now();
    const interval = this.#options.autoResetIntervalMs ?? DEFAULT_AUTO_RESET_INTERVAL_MS;
    if (!this.#connection.connected || conv.session?.awaitingReply || now - conv.lastAutoResetAt < interval)
      return;
    conv.lastAutoResetAt = now;
    this.resetSession(conv.peer).catch((err: unknown) => this.#report(err));
  }

  /**
   * A conversation waits for an earlier message: fetch now (it may be stored and not pushed), at
   * most once per GAP_FETCH_INTERVAL_MS; a gap found within that time is fetched at its end.
   */
  #fetchForGap(): void {
    if (this.#gapFetchTimer !== undefined || !this.#connection.connected || this.#closed) return;
    const wait = Math.max(0, this.#lastGapFetchAt + GAP_FETCH_INTERVAL_MS - this.#clock.now());
    this.#gapFetchTimer = setTimeout(() => {
      this.#gapFetchTimer = undefined;
      if (!this.#connection.connected || this.#closed) return;
      this.#lastGapFetchAt = this.#clock.now();
      this.#intake.refetch().catch((err: unknown) => {
        if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
      });
    }, wait);
  }

  #ack(id: MessageIdString): void {
    this.#pendingAcks.add(id);
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      const ids = [...this.#pendingAcks];
      this.#pendingAcks.clear();
      for (let i = 0; i < ids.length; i += MAX_ACKS_PER_CALL) {
        // A lost ack only means a redelivery, which the seen-id memory absorbs.
        this.#connection
          .request('ack', { ids: ids.slice(i, i + MAX_ACKS_PER_CALL) })
          .catch((err: unknown) => {
            if (!ClientError.is(err, ClientErrorCode.NotConnected)) this.#report(err);
          });
      }
    }, 0);
  }

  /** Adds a persisted inbox entry to the reorder buffer and queues what it releases. */
  #push(conv: Conversation, key: string, entry: InboxEntry): void {
    conv.held.set(key, entry);
    this.#released(conv, conv.reorder.push(entry.sequence, entry));
  }

  #released(conv: Conversation, released: Released<InboxEntry>[]): void {
    for (const r of released) {
      conv.held.delete(inboxKey(conv.peer, r.item.sequence, r.item.id));
      conv.queue.push(r);
    }
    clearTimeout(conv.timer);
    conv.timer = undefined;
    const deadline = conv.reorder.deadline;
    if (deadline !== undefined && !this.#closed) {
      this.#fetchForGap();
      conv.timer = setTimeout(
        () => this.#released(conv, conv.reorder.expire()),
        Math.max(0, deadline - this.#clock.now()) + 1,
      );
    }
    void this.#deliver(conv);
  }

  /**
   * The released entry to hand over next, if any. With a `message` listener: the queue's head,
   * whatever its kind (messages and receipts in order; a receipt with no `delivered` listener is
   * simply consumed). Without one, messages wait in the inbox for a listener, but receipts do
   * not wait behind them: with a `delivered` listener the first receipt in the queue goes next.
   * With neither listener nothing goes (a receipt restored by `open` waits for the app's listeners).
   */
  #nextToDeliver(conv: Conversation): Released<InboxEntry> | undefined {
    if (this.listenerCount('message') > 0) return conv.queue[0];
    if (this.listenerCount('delivered') > 0) return conv.queue.find((r) => r.item.kind === 'receipt');
    return undefined;
  }

  /**
   * Hands released entries to the app (messages in order, see `#nextToDeliver`); deletes each
   * entry after its handlers returned.
   */
  async #deliver(conv: Conversation): Promise<void> {
    if (conv.delivering) return;
    conv.delivering = true;
    try {
      let r: Released<InboxEntry> | undefined;
      while (!this.#closed && (r = this.#nextToDeliver(conv)) !== undefined) {
        const e = r.item;
        let errors: unknown[] = [];
        if (e.kind === 'receipt') {
          for (const id of e.ids) errors.push(...(await this.emitAsync('delivered', { to: e.peer, id })));
        } else {
          const base = {
            from: e.peer,
            id: e.id,
            sequence: e.sequence,
            sentAt: e.sentAt,
            receivedAt: e.receivedAt,
            late: r.late,
            skippedBefore: r.skippedBefore,
          };
          errors = await this.emitAsync(
            'message',
            e.kind === 'text'
              ? { ...base, kind: 'text', text: e.text }
              : { ...base, kind: 'bytes', bytes: e.bytes.slice() },
          );
        }
        for (const err of errors) {
          this.#report(
            new ClientError(
              ClientErrorCode.HandlerFailed,
              'an event handler threw; the message counts as delivered',
              {
                cause: err,
                peer: e.peer,
                messageId: e.id,
              },
            ),
          );
        }
        if (this.#closed) return; // the one window: handed over, not yet deleted
        // Not under the conversation's lock: the entry goes as soon as the handlers returned,
        // however long the receive path holds the lock (that keeps the window above small).
        // Only this path and a session reset write recvseq/, each from the current memory.
        conv.meta.recvNext = conv.reorder.next;
        await this.#store.write({
          put: [
            [recvSeqKey(conv.peer), encodeCounter(conv.meta.recvNext)],
            ...(e.kind === 'receipt' ? [] : [[receiptKey(conv.peer, e.id), new Uint8Array(0)] as const]),
          ],
          delete: [inboxKey(conv.peer, e.sequence, e.id)],
        });
        const at = conv.queue.indexOf(r);
        if (at >= 0) conv.queue.splice(at, 1);
        if (e.kind !== 'receipt') this.#scheduleReceipts(conv.peer);
      }
    } catch (err) {
      this.#report(err);
    } finally {
      conv.delivering = false;
    }
  }

  #scheduleReceipts(peer: AddressString): void {
    if (this.#receiptsScheduled.has(peer) || this.#closed) return;
    this.#receiptsScheduled.add(peer);
    setTimeout(() => {
      this.#receiptsScheduled.delete(peer);
      if (this.#closed) return;
      this.#locks
        .run(peer, () => this.#queueReceipts(peer))
        .catch((err: unknown) => {
          if (!ClientError.is(err, ClientErrorCode.QueueFull)) this.#report(err);
        });
    }, RECEIPT_DELAY_MS);
  }

  /** Encrypts one receipt per (up to) 500 delivered ids and queues it; under the peer's lock. */
  async #queueReceipts(peer: AddressString): Promise<void> {
    const keys = (await this.#store.list(receiptPrefix(peer))).map(([key]) => key);
    if (keys.length === 0) return;
    const conv = await this.#conversation(peer);
    if (!conv.session) return; // no session (lost): the receipts wait for a new one
    for (let i = 0; i < keys.length; i += MAX_RECEIPT_IDS) {
      const chunk = keys.slice(i, i + MAX_RECEIPT_IDS);
      const messageIds = chunk.map((k) => parseMessageId(k.slice(receiptPrefix(peer).length)));
      await this.#enqueue(
        conv,
        (sequence, sentAt) => ({ kind: PayloadKind.DeliveryReceipt, sequence, sentAt, messageIds }),
        { delete: chunk },
        false,
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  #checkOpen(what: string): void {
    if (this.#closed) throw this.#closedError(what);
  }

  #closedError(what: string): ClientError {
    return new ClientError(
      ClientErrorCode.StoreClosed,
      `${what}: the client is closed; queued messages stay in the store and go out when it is opened again`,
    );
  }

  #checkPeer(to: unknown): AddressString {
    if (typeof to !== 'string') throw invalid('peer address: expected a string');
    let peer: AddressString;
    try {
      peer = asAddressString(to);
    } catch (err) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'peer address: not a valid address string', {
        cause: err,
      });
    }
    if (peer === this.address) throw invalid('peer address: this is our own address');
    return peer;
  }

  /** Emits `error` (never with a secret: ClientError messages carry none); other errors are wrapped. */
  #report(err: unknown): void {
    if (this.#closed) return;
    const error = ClientError.is(err)
      ? err
      : new ClientError(
          ClientErrorCode.RelayError,
          `unexpected failure: ${ProtocolError.is(err) ? `${err.code}: ${err.message}` : 'see cause'}`,
          { cause: err },
        );
    this.emit('error', error);
  }
}

/** Mailbox order of two items (their positions are decimal integers). */
function byPosition(a: MailItem, b: MailItem): number {
  const x = BigInt(a.cursor);
  const y = BigInt(b.cursor);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Groups due entries into `send` requests within the count and byte limits of one event. */
function chunkEnvelopes<T extends { envelope: Uint8Array }>(entries: readonly T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const e of entries) {
    if (
      current.length > 0 &&
      (current.length >= Math.min(MAX_ENVELOPES_PER_SEND, MAX_BINARY_ATTACHMENTS) ||
        bytes + e.envelope.length > MAX_SEND_BATCH_BYTES)
    ) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += e.envelope.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}
