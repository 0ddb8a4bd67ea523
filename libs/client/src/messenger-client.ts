/**
 * MessengerClient: what a frontend installs. One object per device identity: it keeps the
 * identity and prekeys in a ClientStore, holds the connection to one relay (pinned by its
 * identity key), sets up a PQXDH session per peer, sends through the persistent outbox, and
 * hands received messages to the application exactly once and in order per conversation.
 *
 * Delivery guarantees (docs/client.md):
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
 *
 * This class is the facade: it wires the components (docs/client.md, "Components") and
 * delegates to them.
 */
import { type IdentityKeyPair, ready } from '@usm/crypto';
import {
  type AddressString,
  type MessageIdString,
  type PrekeyStore,
  type ServerEventName,
  type ServerPayload,
  addressOf,
  formatAddress,
} from '@usm/protocol';
import type { MessengerClientEvents } from './client-events.js';
import { type MessengerClientOptions, type ResolvedOptions, resolveOptions } from './client-options.js';
import { RelayConnection } from './connection.js';
import { ConversationStore } from './conversations/conversation-store.js';
import { TypedEmitter } from './events.js';
import { loadDeviceKeys, safetyNumberOf } from './identity/device-keys.js';
import { AppDelivery } from './inbox/app-delivery.js';
import { KeyedLock } from './locks.js';
import { Outbox } from './outbox/outbox.js';
import { OutboxPump } from './outbox/outbox-pump.js';
import { PrekeyUpkeep } from './prekeys/prekey-upkeep.js';
import { Receipts } from './receipts/receipts.js';
import { ReceivePipeline } from './receive/receive-pipeline.js';
import { type Runtime, clientClosed, systemScheduler, toClientError } from './runtime.js';
import { SendPipeline, checkPeer } from './send/send-pipeline.js';
import type { ClientStore } from './storage/client-store.js';
import { guardStore } from './storage/guarded-store.js';
import { SyncLoop } from './sync/sync-loop.js';

export type {
  DeliveryReceipt,
  IncomingMessage,
  MessengerClientEvents,
  UnsupportedMessage,
} from './client-events.js';
export type { MessengerClientHooks, MessengerClientOptions } from './client-options.js';

/** One handler per server push: a push added to the protocol fails to compile until it has one. */
type PushHandlers = { readonly [E in ServerEventName]: (payload: ServerPayload<E>) => void };

/**
 * An end-to-end encrypted messenger client for one device.
 *
 * @example
 * const client = await MessengerClient.open({ relayUrl, relayIdentityKey, store: new MemoryStore() });
 * client.on('message', (m) => console.log(m.from, m.kind === 'text' ? m.text : m.bytes.length));
 * client.on('delivered', ({ to, id }) => markDelivered(to, id));
 * client.on('unsupported', ({ from }) => showNeedsUpdate(from));
 * await client.connect();
 * const { id } = await client.send(bobAddress, 'hello');
 */
export class MessengerClient extends TypedEmitter<MessengerClientEvents> {
  /** This device's address: `<base64url identity key>.1`. Give it to your contacts. */
  readonly address: AddressString;
  readonly #identity: IdentityKeyPair;
  readonly #connection: RelayConnection;
  readonly #delivery: AppDelivery;
  readonly #receipts: Receipts;
  readonly #send: SendPipeline;
  readonly #pump: OutboxPump;
  readonly #receive: ReceivePipeline;
  readonly #prekeys: PrekeyUpkeep;
  readonly #sync: SyncLoop;
  #closed = false;
  #onClose: () => void = () => undefined;

  private constructor(
    o: ResolvedOptions,
    store: ClientStore,
    identity: IdentityKeyPair,
    prekeys: PrekeyStore,
    outbox: Outbox,
  ) {
    super();
    const self = addressOf(identity.publicKey);
    this.address = formatAddress(self);
    this.#identity = identity;
    const rt: Runtime = {
      clock: o.clock,
      scheduler: systemScheduler,
      report: (err) => {
        if (!this.#closed) this.emit('error', toClientError(err));
      },
      isClosed: () => this.#closed,
    };
    const locks = new KeyedLock();
    const pushes: PushHandlers = {
      mail: (payload) => this.#sync.pushed(payload.mail),
      'mail:sync': () => this.#sync.mailSync(),
      'prekeys:low': () => void this.#prekeys.topUp(),
    };
    const connection = (this.#connection = new RelayConnection({
      url: o.relayUrl,
      identity,
      relayIdentity: o.relayKey,
      address: this.address,
      clock: o.clock,
      reconnect: o.reconnect,
      ...(o.backoff ? { backoff: o.backoff } : {}),
      ...(o.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: o.requestTimeoutMs }),
      ...(o.socketFactory ? { socketFactory: o.socketFactory } : {}),
      onAuthenticated: () => this.#sync.authenticated(),
      onStatus: (status) => {
        this.#sync.status(status);
        this.emit('connection', status);
      },
      onError: (err) => this.#sync.connectionError(err),
      onPush: (event, payload) => pushes[event](payload),
    }));
    const conversations = new ConversationStore({
      ...rt,
      store,
      seenIdsPerConversation: o.seenIdsPerConversation,
      reorderTimeoutMs: o.reorderTimeoutMs,
      onEvict: (conv) => this.#delivery.evict(conv),
    });
    this.#delivery = new AppDelivery({
      ...rt,
      store,
      conversations,
      locks,
      app: {
        count: (event) => this.listenerCount(event),
        emit: (event, ...args) => this.emitAsync(event, ...args),
      },
      onHandedOver: (peer) => this.#receipts.schedule(peer),
      onGap: () => this.#sync.fetchForGap(),
    });
    this.#send = new SendPipeline({
      ...rt,
      identity,
      address: this.address,
      conversations,
      locks,
      outbox,
      connection,
      restartReceiving: (conv, recvNext) => this.#delivery.restart(conv, recvNext),
      onQueued: () => void this.#pump.flush(),
    });
    this.#receipts = new Receipts({
      ...rt,
      store,
      conversations,
      locks,
      enqueue: (conv, build, extra) => this.#send.enqueue(conv, build, extra, false),
    });
    this.#pump = new OutboxPump({
      ...rt,
      outbox,
      connection,
      settle: (id, err) => this.#send.settle(id, err),
    });
    this.#prekeys = new PrekeyUpkeep({
      ...rt,
      prekeys,
      store,
      connection,
      oneTimePrekeyBatch: o.oneTimePrekeyBatch,
      signedPrekeyMaxAgeMs: o.signedPrekeyMaxAgeMs,
    });
    this.#receive = new ReceivePipeline({
      ...rt,
      self,
      address: this.address,
      store,
      conversations,
      locks,
      connection,
      prekeys,
      writeWithPrekeys: (put) => this.#prekeys.writeWith(put),
      push: (conv, key, entry) => this.#delivery.push(conv, key, entry),
      restartReceiving: (conv, recvNext) => this.#delivery.restart(conv, recvNext),
      resetSession: (peer) => this.resetSession(peer),
      autoResetIntervalMs: o.autoResetIntervalMs,
      afterPersist: o.hooks?.afterPersist,
    });
    this.#sync = new SyncLoop({
      ...rt,
      connection,
      receive: (mail) => this.#receive.receiveAll(mail),
      syncPrekeys: () => this.#prekeys.sync(),
      resumeOutbox: () => this.#pump.resume(),
      fetchIntervalMs: o.fetchIntervalMs,
      reconnect: o.reconnect,
    });
  }

  /**
   * Loads the identity and prekeys from `store`, or creates them on first use, and restores the
   * outbox and the undelivered inbox. Does not connect.
   */
  static async open(options: MessengerClientOptions): Promise<MessengerClient> {
    const o = resolveOptions(options);
    await ready();
    let closed = false;
    const store = guardStore(o.store, () => closed);
    const { identity, prekeys } = await loadDeviceKeys(store, o.clock);
    const outbox = await Outbox.open(store, { ...o.outbox, clock: o.clock });
    const client = new MessengerClient(o, store, identity, prekeys, outbox);
    client.#onClose = () => {
      closed = true;
    };
    await client.#delivery.restore();
    await client.#receipts.restore();
    return client;
  }

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
    if (this.#closed) return Promise.reject(clientClosed('connect'));
    return this.#sync.connect();
  }

  /**
   * Encrypts `content` for `to` and queues it; resolves with the message id once the relay has
   * durably stored it. The first message to a peer needs a connection (to claim its prekey
   * bundle): NOT_CONNECTED otherwise. Later ones are queued offline and sent on reconnect.
   * Throws QUEUE_FULL (outbox at its bound: nothing queued), EXPIRED (not stored in time),
   * INVALID_ARGUMENT, RELAY_ERROR / PROTOCOL_VIOLATION (no usable bundle for the peer).
   */
  async send(to: string, content: string | Uint8Array): Promise<{ id: MessageIdString }> {
    if (this.#closed) throw clientClosed('send');
    return this.#send.send(to, content);
  }

  /**
   * Starts a fresh session with `peer` from a newly claimed bundle and tells the peer (a
   * SessionReset message); resolves when the relay stored that message. Use it when a
   * conversation is wedged (DECRYPT_FAILED from that peer). Needs a connection. Both sides'
   * sequence numbers start again at 0; messages still in flight from the old session may fail
   * to decrypt (reported) or arrive late.
   */
  async resetSession(peerAddress: string): Promise<{ id: MessageIdString }> {
    if (this.#closed) throw clientClosed('resetSession');
    return this.#send.resetSession(peerAddress);
  }

  /**
   * The 60-digit safety number of this identity and `peerAddress`'s (libsignal's numeric
   * fingerprint): both sides see the same digits; compare them out of band. Format with
   * `formatSafetyNumber` from @usm/crypto.
   */
  safetyNumber(peerAddress: string): string {
    return safetyNumberOf(this.#identity, this.address, checkPeer(peerAddress, this.address));
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
    this.#pump.close();
    this.#receive.close();
    this.#delivery.close();
    this.#receipts.close();
    this.#send.close();
    this.#sync.close(clientClosed('connect'));
  }

  protected override listenerAdded(event: keyof MessengerClientEvents): void {
    this.#delivery.listenerAdded(event);
  }
}
