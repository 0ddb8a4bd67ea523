/**
 * The page's DOM: reads the elements of index.html once and renders what main.ts tells it. Every
 * element a test reads carries a stable `data-testid`; states are `data-state` / `data-status`
 * attributes, so tests (and CSS) never depend on wording.
 *
 * Message text goes into the DOM through `textContent` only, never as HTML.
 */

/** Where one of our messages stands: queued here, held by the relay, or decrypted by the peer. */
export type OutgoingStatus = 'sending' | 'stored' | 'delivered' | 'failed';

const STATUS_TEXT: Readonly<Record<OutgoingStatus, string>> = {
  sending: 'sending…',
  stored: 'stored at relay ✓',
  delivered: 'delivered ✓✓',
  failed: 'not sent',
};

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}: index.html and app.js are from different builds`);
  return el as T;
}

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** One of our messages in the list. */
export class OutgoingMessageView {
  readonly #item: HTMLLIElement;
  readonly #status: HTMLElement;

  constructor(item: HTMLLIElement, status: HTMLElement) {
    this.#item = item;
    this.#status = status;
  }

  get status(): OutgoingStatus {
    return this.#item.dataset.status as OutgoingStatus;
  }

  /** Records the message id `send` resolved with (receipts refer to it). */
  set id(id: string) {
    this.#item.dataset.id = id;
  }

  /** Moves the status forward; a delivered message never goes back to "stored". */
  setStatus(status: OutgoingStatus, detail?: string): void {
    if (this.status === 'delivered' && status !== 'delivered') return;
    this.#item.dataset.status = status;
    this.#status.textContent = detail ? `${STATUS_TEXT[status]} (${detail})` : STATUS_TEXT[status];
  }
}

export class ChatView {
  readonly #status = byId('status');
  readonly #connection = byId('connection');
  readonly #app = byId('app');
  readonly #ownAddress = byId('own-address');
  readonly #copy = byId<HTMLButtonElement>('copy-address');
  readonly #relay = byId('relay');
  readonly #peerForm = byId<HTMLFormElement>('peer-form');
  readonly #peerInput = byId<HTMLInputElement>('peer-input');
  readonly #peerError = byId('peer-error');
  readonly #safety = byId('safety');
  readonly #safetyNumber = byId('safety-number');
  readonly #messages = byId<HTMLOListElement>('messages');
  readonly #composeForm = byId<HTMLFormElement>('compose-form');
  readonly #compose = byId<HTMLInputElement>('compose');
  readonly #send = byId<HTMLButtonElement>('send');
  readonly #clientError = byId('client-error');

  /** The boot status line: `loading`, then `ready` or `error`. */
  setStatus(state: 'loading' | 'ready' | 'error', text: string): void {
    this.#status.dataset.state = state;
    this.#status.textContent = text;
  }

  /** The connection badge: `connecting`, `connected` or `disconnected`. */
  setConnection(state: 'connecting' | 'connected' | 'disconnected'): void {
    this.#connection.dataset.state = state;
    this.#connection.textContent = state;
  }

  showDevice(address: string, relay: { url: string; fingerprint: string }): void {
    this.#ownAddress.textContent = address;
    this.#relay.textContent = `${relay.url}, key ${relay.fingerprint} (pinned)`;
    this.#app.hidden = false;
  }

  /** Copies our address; where the clipboard is not allowed, selects it for the user to copy. */
  onCopy(): void {
    this.#copy.addEventListener('click', () => {
      const text = this.#ownAddress.textContent ?? '';
      navigator.clipboard
        .writeText(text)
        .then(() => this.#flash('Copied'))
        .catch(() => {
          const range = document.createRange();
          range.selectNodeContents(this.#ownAddress);
          getSelection()?.removeAllRanges();
          getSelection()?.addRange(range);
          this.#flash('Press Ctrl+C');
        });
    });
  }

  /** Calls `open` with the pasted address; `open` returns an error text or undefined. */
  onPeer(open: (address: string) => string | undefined): void {
    this.#peerForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const error = open(this.#peerInput.value.trim());
      this.#peerError.hidden = error === undefined;
      this.#peerError.textContent = error ?? '';
    });
  }

  /** Shows the open conversation: the peer's address in the field and the safety number. */
  showPeer(address: string, safetyNumber: string): void {
    this.#peerInput.value = address;
    this.#peerError.hidden = true;
    this.#safetyNumber.textContent = safetyNumber;
    this.#safety.hidden = false;
    this.#compose.disabled = false;
    this.#send.disabled = false;
  }

  /** Calls `send` with the typed text (trimmed, not empty) and clears the field. */
  onSend(send: (text: string) => void): void {
    this.#composeForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.#compose.value.trim();
      if (text.length === 0 || this.#send.disabled) return;
      this.#compose.value = '';
      send(text);
    });
  }

  addOutgoing(text: string, at: number): OutgoingMessageView {
    const { item, meta } = this.#message('out', text, at, 'you');
    const status = document.createElement('span');
    status.className = 'status';
    status.dataset.testid = 'message-status';
    meta.append(' · ', status);
    const view = new OutgoingMessageView(item, status);
    view.setStatus('sending');
    return view;
  }

  /** A received message; `from` labels it ('them' for the open conversation's peer). */
  addIncoming(message: { id: string; text: string; sentAt: number; from: string }): void {
    const { item } = this.#message('in', message.text, message.sentAt, message.from);
    item.dataset.id = message.id;
    item.dataset.status = 'received';
  }

  /** Shows the client's latest error (codes and messages only: they never hold a secret). */
  showClientError(text: string | undefined): void {
    this.#clientError.hidden = text === undefined;
    this.#clientError.textContent = text ?? '';
  }

  #message(direction: 'in' | 'out', text: string, at: number, who: string) {
    const item = document.createElement('li');
    item.className = 'message';
    item.dataset.testid = 'message';
    item.dataset.direction = direction;
    const body = document.createElement('span');
    body.className = 'text';
    body.dataset.testid = 'message-text';
    body.textContent = text;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = `${who}, ${time(at)}`;
    item.append(body, meta);
    this.#messages.append(item);
    item.scrollIntoView({ block: 'nearest' });
    return { item, meta };
  }

  #flash(text: string): void {
    this.#copy.textContent = text;
    setTimeout(() => (this.#copy.textContent = 'Copy'), 1500);
  }
}
