/**
 * The web demo's entry point (bundled to dist/app.js by build.mjs). For now it boots: loads the
 * crypto core (libsodium and hash-wasm WASM, WebCrypto AES), makes this tab's device identity and
 * shows its address and its half of every safety number, and checks that the client library's
 * IndexedDB store opens. The chat itself comes with @usm/client's MessengerClient.
 *
 * The page sets `#status[data-state]` to `ready` or `error`: the browser tests wait on it.
 * It shows only public values (the address, fingerprint digits), never a key's secret.
 */
import { IndexedDbStore } from '@usm/client';
import { aesGcm, fingerprintDigits, formatSafetyNumber, generateIdentityKeyPair, ready } from '@usm/crypto';
import { addressOf, formatAddress } from '@usm/protocol';

/** The IndexedDB database the demo's client state will live in. */
export const DEMO_DATABASE = 'usm-web-demo';

function element(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}: index.html and app.js are from different builds`);
  return el;
}

function setStatus(state: 'ready' | 'error', text: string) {
  const status = element('status');
  status.textContent = text;
  status.dataset.state = state;
}

async function boot(): Promise<void> {
  await ready();

  // A fresh identity per page load until MessengerClient keeps one in the store.
  const identity = generateIdentityKeyPair();
  const address = formatAddress(addressOf(identity.publicKey));
  // The stable id in a safety number is the address without its device id (as MessengerClient's
  // safetyNumber uses it), so these 30 digits are this side of the number a peer compares.
  const stableId = address.slice(0, address.indexOf('.'));
  const digits = fingerprintDigits(identity.publicKey.encode(), new TextEncoder().encode(stableId));

  const store = await IndexedDbStore.open({ name: DEMO_DATABASE });
  await store.close();

  element('address').textContent = address;
  element('fingerprint').textContent = formatSafetyNumber(digits);
  element('aes-backend').textContent = aesGcm().name;
  element('storage').textContent = 'IndexedDB ready';
  element('device').hidden = false;
  setStatus('ready', 'crypto ready');
}

boot().catch((err: unknown) => {
  // Error names and messages of the crypto core and the client never hold secrets.
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  setStatus('error', `The demo could not start: ${reason}`);
  console.error(err);
});
