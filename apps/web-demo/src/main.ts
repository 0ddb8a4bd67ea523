/**
 * The browser demo (bundled to dist/app.js by build.mjs): a one-to-one chat on @usm/client.
 *
 * On load it reads the relay's key (relay-info.ts: trust on first use, for the demo only), opens a
 * MessengerClient on an IndexedDbStore (the identity, sessions, outbox and undelivered inbox stay in
 * this browser profile across reloads), connects, and shows this device's address. Pasting a
 * contact's address opens the conversation and shows the safety number both sides compare. Each
 * sent message shows where it stands: sending (encrypted and queued here), stored at relay (`send`
 * resolved), delivered (the contact's device returned an encrypted receipt).
 *
 * Nothing here logs: no plaintext, key or message reaches the console. Message history lives in
 * the page only. One tab per browser profile holds the identity (Web Locks), as IndexedDbStore asks.
 */
import {
  ClientError,
  IndexedDbStore,
  MessengerClient,
  type BackoffOptions,
  type IncomingMessage,
  type UnsupportedMessage,
} from '@usm/client';
import { formatSafetyNumber } from '@usm/crypto';
import { ChatView, type OutgoingMessageView } from './chat-view.js';
import { fetchRelayInfo, type RelayInfo } from './relay-info.js';

/** The IndexedDB database holding this browser profile's identity and client state. */
const DEMO_DATABASE = 'usm-web-demo';

/** localStorage key of the open conversation's address (public: the relay routes by it). */
const PEER_KEY = 'usm-web-demo:peer';

/**
 * The reconnect schedule of a page someone is looking at: full jitter with a 5 s ceiling, so the
 * chat is back within seconds of the network returning. The library's default ceiling (30 s) suits
 * many devices reconnecting after a relay outage better; this page is one person's.
 */
const PAGE_BACKOFF: BackoffOptions = { baseMs: 250, capMs: 5_000 };

/**
 * Holds this profile's identity for this tab until the tab closes. When another tab holds it, says
 * so and waits for it (a reload also lands here for a moment, until the old page is gone).
 */
async function holdTabLock(view: ChatView): Promise<void> {
  if (!('locks' in navigator)) return;
  const hold = (options: LockOptions) =>
    new Promise<boolean>((resolve) => {
      void navigator.locks.request(DEMO_DATABASE, options, (lock) => {
        resolve(lock !== null);
        return lock === null ? undefined : new Promise<void>(() => undefined); // held until unload
      });
    });
  if (await hold({ ifAvailable: true })) return;
  view.setStatus(
    'loading',
    'This demo is open in another tab of this browser: waiting for that tab to close.',
  );
  await hold({});
}

function explain(err: unknown): string {
  if (ClientError.is(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : 'unexpected failure';
}

/** The conversation state: the open peer and our messages by id. */
class Chat {
  #peer: string | undefined;
  readonly #sent = new Map<string, OutgoingMessageView>();
  /** Receipts that arrived before their `send` resolved (a slow ack): applied when it does. */
  readonly #early = new Set<string>();

  constructor(
    private readonly client: MessengerClient,
    private readonly view: ChatView,
  ) {}

  /** Opens the conversation with `address`; returns an error text when it is not one. */
  open(address: string): string | undefined {
    let digits: string;
    try {
      digits = this.client.safetyNumber(address);
    } catch (err) {
      return address === this.client.address
        ? 'That is your own address: paste your contact’s.'
        : `Not an address (${ClientError.is(err) ? err.code : 'invalid'}): paste the whole line your contact copied.`;
    }
    this.#peer = address;
    localStorage.setItem(PEER_KEY, address);
    this.view.showPeer(address, formatSafetyNumber(digits));
    return undefined;
  }

  restore(): void {
    const saved = localStorage.getItem(PEER_KEY);
    if (saved && this.open(saved) !== undefined) localStorage.removeItem(PEER_KEY);
  }

  send(text: string): void {
    const peer = this.#peer;
    if (peer === undefined) return;
    const item = this.view.addOutgoing(text, Date.now());
    this.client.send(peer, text).then(
      ({ id }) => {
        item.id = id;
        this.#sent.set(id, item);
        item.setStatus(this.#early.delete(id) ? 'delivered' : 'stored');
      },
      (err: unknown) => item.setStatus('failed', ClientError.is(err) ? err.code : 'error'),
    );
  }

  received(message: IncomingMessage): void {
    if (this.#peer === undefined) this.open(message.from); // the first contact opens the chat
    this.view.addIncoming({
      id: message.id,
      text: message.kind === 'text' ? message.text : `(${message.bytes.length} bytes)`,
      sentAt: message.sentAt,
      from: message.from === this.#peer ? 'them' : `${message.from.slice(0, 8)}…`,
    });
  }

  /** A message of a kind this version cannot show, in its place in the conversation. */
  unsupported(message: UnsupportedMessage): void {
    if (this.#peer === undefined) this.open(message.from);
    this.view.addIncoming({
      id: message.id,
      text: `This message needs a newer version of the app (message kind ${message.kind}).`,
      sentAt: message.sentAt,
      from: message.from === this.#peer ? 'them' : `${message.from.slice(0, 8)}…`,
    });
  }

  delivered(id: string): void {
    const item = this.#sent.get(id);
    if (item) item.setStatus('delivered');
    else this.#early.add(id);
  }
}

async function boot(view: ChatView): Promise<void> {
  await holdTabLock(view);
  const relay: RelayInfo = await fetchRelayInfo();
  const store = await IndexedDbStore.open({ name: DEMO_DATABASE });
  const client = await MessengerClient.open({
    relayUrl: relay.url,
    relayIdentityKey: relay.publicKey,
    store,
    backoff: PAGE_BACKOFF,
  });
  const chat = new Chat(client, view);

  // 'connected' is shown once the first sync is done (prekeys published, waiting mail fetched), so
  // that a contact can start a session with us as soon as the badge says so.
  let synced = false;
  client.on('connection', ({ state }) => {
    if (state === 'connected') view.showClientError(undefined);
    if (state !== 'connected' || synced) view.setConnection(state);
  });
  client.on('message', (m) => chat.received(m));
  client.on('unsupported', (m) => chat.unsupported(m));
  client.on('delivered', ({ id }) => chat.delivered(id));
  client.on('error', (err) => view.showClientError(explain(err)));
  view.onCopy();
  view.onPeer((address) => chat.open(address));
  view.onSend((text) => chat.send(text));

  view.showDevice(client.address, relay);
  chat.restore();
  view.setStatus('ready', 'Ready: your keys were made in this browser and never leave it.');

  client.connect().then(
    () => {
      synced = true;
      view.setConnection(client.connected ? 'connected' : 'disconnected');
    },
    // Reconnection goes on; the error (CLOCK_SKEW, HANDSHAKE_FAILED) says what to fix, and the
    // badge follows the connection events from now on.
    (err: unknown) => {
      synced = true;
      view.showClientError(explain(err));
    },
  );
}

const view = new ChatView();
boot(view).catch((err: unknown) => {
  // Error names and messages of the crypto core and the client never hold secrets.
  view.setStatus('error', `The demo could not start: ${explain(err)}`);
  view.setConnection('disconnected');
  console.error(explain(err));
});
