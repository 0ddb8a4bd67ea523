/**
 * The browser demo end to end, in real headless Chromium: two people chat through the sample relay.
 *
 * The relay is the sample app's own module (apps/relay-server: AppModule with MessengerRelayModule,
 * GET /relay.json, the built demo served at /), booted in this process the way its main.ts boots
 * it, on a real PostgreSQL (usePostgres). The demo is built by this file with its build command.
 * Two browser contexts are two people's browsers (own IndexedDB each). Through the page only:
 *  - each page boots, shows its address, and connects; addresses cross over through the DOM;
 *  - both pages show the same safety number, the one Node computes from the two addresses;
 *  - messages go both ways, and the sender sees "delivered" (the end-to-end receipt);
 *  - Bob's browser goes offline (context.setOffline) while Alice sends five: they are stored at the
 *    relay and do not reach Bob; once he is back, all of them appear exactly once, in order, and
 *    Alice sees each one delivered;
 *  - Bob reloads: the same identity and conversation come back from IndexedDB and he can still write;
 *  - a second tab in Alice's browser waits for the first (one tab holds an identity).
 *  - Bob's page goes offline while a Node client sends it a backlog past MAX_SKIP, and comes back
 *    while more is sent: the page lists every message once, in order, with no client error.
 *    Then a newer version of that client sends a message kind the page does not know: the page
 *    shows it as needing a newer version, in its place, and the next text right after it.
 * Screenshots of both windows go to test-artifacts/web-demo-chat/. With USM_UPDATE_DOCS_SCREENSHOT=1
 * Alice's window is also copied to docs/web-demo.png (the README's picture).
 */
import { mkdtempSync } from 'node:fs';
import { copyFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { NestFactory } from '@nestjs/core';
import {
  IdentityPublicKey,
  formatSafetyNumber,
  generateIdentityKeyPair,
  ready,
  safetyNumber,
  toHex,
} from '@usm/crypto';
import { MemoryStore, MessengerClient } from '@usm/client';
import { parseAddress } from '@usm/protocol';
import { queueUnknownKind } from '../../../libs/client/src/unknown-kind.test.js';
import type { BrowserContext, Page } from 'playwright-core';
import { AppModule } from '../../relay-server/src/app.module.js';
import { loadConfig } from '../../relay-server/src/config.js';
import { useBrowserHarness } from '../../../test/support/browser.js';
import { REPO_ROOT, run } from '../../../test/support/pack.js';
import { usePostgres } from '../../../test/support/postgres.js';

const BUILD_TIMEOUT_MS = 60_000;
/** About 5 to 15 s on an idle machine; the bounds below are for a loaded CI machine. */
const TEST_TIMEOUT_MS = 120_000;
/**
 * Bound of one wait for the page (to boot and connect, a message to arrive, a status to change).
 * Bob's reconnection after going back online is one of them: the page's backoff ceiling is 5 s
 * (main.ts, PAGE_BACKOFF), then the handshake and the fetch of waiting mail.
 */
const WAIT_MS = 30_000;
/** Chromium's message for a connection tried while the context is offline: expected for Bob. */
const OFFLINE_ERRORS = [/ERR_INTERNET_DISCONNECTED/];
/** Messages sent to Bob's page while it is offline: past MAX_SKIP (1,000), so order matters. */
const BACKLOG = 1_200;
/** Messages sent while it comes back and fetches that backlog. */
const LIVE = 300;

// The demo, built into a scratch folder (apps/web-demo/dist belongs to whoever runs `npm start`).
const outdir = mkdtempSync(join(tmpdir(), 'usm-web-demo-'));
let buildOutput = '';
beforeAll(async () => {
  const { stdout } = await run(
    process.execPath,
    ['apps/web-demo/build.mjs', '--outdir', outdir],
    REPO_ROOT,
    BUILD_TIMEOUT_MS,
  );
  buildOutput = stdout;
}, BUILD_TIMEOUT_MS + 10_000);
afterAll(async () => {
  await rm(outdir, { recursive: true, force: true });
});

// The sample relay on a fresh database, serving the demo and /relay.json.
const pg = usePostgres();
let relay: NestExpressApplication | undefined;
let relayUrl = '';
let relayKeyHex = '';
beforeAll(async () => {
  await ready();
  // Rate limits off: the backlog case sends 1,500 messages from one identity in seconds, far past
  // the default send bucket (docs/relay.md, "Rate limits"); the limits themselves are tested in libs/relay.
  const config = loadConfig({ WEB_DEMO_DIR: outdir, RATE_LIMITS: 'off' });
  const relayIdentity = generateIdentityKeyPair();
  relayKeyHex = toHex(relayIdentity.publicKey.bytes);
  relay = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot({ config, databaseUrl: pg.url, identity: relayIdentity }),
    { logger: false },
  );
  relay.useStaticAssets(outdir);
  await relay.listen(0, '127.0.0.1');
  relayUrl = (await relay.getUrl()).replace('[::1]', '127.0.0.1');
}, 60_000);
afterAll(async () => {
  await relay?.close();
});

const harness = useBrowserHarness({ suite: 'web-demo-chat' });

/** What a page shows about itself, for a failed wait's message. */
async function pageState(page: Page): Promise<string> {
  return page
    .evaluate(() => {
      const el = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`);
      const out = [...document.querySelectorAll<HTMLElement>('[data-testid="message"]')].map(
        (li) => `${li.dataset.direction}:${li.dataset.status}`,
      );
      return (
        `status ${el('status')?.dataset.state} "${el('status')?.textContent}", ` +
        `connection ${el('connection')?.dataset.state}, client error "${el('client-error')?.textContent}", ` +
        `messages [${out.join(' ')}]`
      );
    })
    .catch((err: unknown) => `(the page did not answer: ${(err as Error).message})`);
}

/**
 * Waits until `predicate(arg)` holds in the page; after `timeout` ms fails with `what` and what the
 * page shows (its status, connection, last client error, message states).
 */
async function until<A>(
  page: Page,
  what: string,
  predicate: (arg: A) => boolean,
  arg: A,
  timeout = WAIT_MS,
): Promise<void> {
  try {
    // The predicate runs in the page; `arg` crosses over as JSON.
    await page.waitForFunction(predicate as (arg: unknown) => boolean, arg as unknown, {
      timeout,
      polling: 50,
    });
  } catch (err) {
    throw new Error(`${what}: not within ${timeout} ms; the page shows ${await pageState(page)}`, {
      cause: err,
    });
  }
}

const byTestId = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);
const text = async (page: Page, id: string) => (await byTestId(page, id).textContent()) ?? '';

interface ShownMessage {
  direction: string;
  status: string;
  text: string;
  id: string;
}

/** The message list as the page shows it, in order. */
function messages(page: Page): Promise<ShownMessage[]> {
  return page.$$eval('[data-testid="message"]', (items) =>
    items.map((li) => ({
      direction: (li as HTMLElement).dataset.direction ?? '',
      status: (li as HTMLElement).dataset.status ?? '',
      text: li.querySelector('[data-testid="message-text"]')?.textContent ?? '',
      id: (li as HTMLElement).dataset.id ?? '',
    })),
  );
}

function connected(page: Page, who: string) {
  return until(
    page,
    `${who}'s page connected`,
    () =>
      document.querySelector<HTMLElement>('[data-testid="status"]')?.dataset.state === 'ready' &&
      document.querySelector<HTMLElement>('[data-testid="connection"]')?.dataset.state === 'connected',
    undefined,
  );
}

/** Waits until the page lists `count` messages in `direction`. */
function countIs(page: Page, who: string, direction: 'in' | 'out', count: number) {
  return until(
    page,
    `${who} lists ${count} ${direction === 'in' ? 'received' : 'sent'} message(s)`,
    ([d, n]) => document.querySelectorAll(`[data-testid="message"][data-direction="${d}"]`).length >= n,
    [direction, count] as const,
  );
}

/** Waits until every sent message of the page has `status`. */
function allSent(page: Page, who: string, status: string) {
  return until(
    page,
    `all of ${who}'s messages ${status}`,
    (s) => {
      const out = [
        ...document.querySelectorAll<HTMLElement>('[data-testid="message"][data-direction="out"]'),
      ];
      return out.length > 0 && out.every((li) => li.dataset.status === s);
    },
    status,
  );
}

async function openChat(page: Page, peer: string): Promise<void> {
  await byTestId(page, 'peer-input').fill(peer);
  await byTestId(page, 'peer-set').click();
  await until(
    page,
    'the conversation opened',
    () => {
      const el = document.querySelector('[data-testid="safety-number"]');
      return (el?.textContent ?? '') !== '';
    },
    undefined,
  );
}

async function send(page: Page, message: string): Promise<void> {
  await byTestId(page, 'compose').fill(message);
  await byTestId(page, 'send').click();
}

const received = async (page: Page) =>
  (await messages(page)).filter((m) => m.direction === 'in').map((m) => m.text);

describe('web demo: two people chat in Chromium through the sample relay', () => {
  it('builds dist/index.html and dist/app.js', async () => {
    expect((await readdir(outdir)).sort()).toEqual(['app.js', 'app.js.map', 'index.html']);
    expect(buildOutput).toMatch(/app\.js \d+ KiB/);
  });

  it(
    'chats both ways, shows one safety number, and delivers what was sent while offline once, in order',
    async () => {
      const size = { viewport: { width: 760, height: 900 } };
      const aliceContext = await harness.newContext(size);
      const bobContext: BrowserContext = await harness.newContext(size);
      const alice = await harness.openPage(`${relayUrl}/`, { context: aliceContext, label: 'alice' });
      const bob = await harness.openPage(`${relayUrl}/`, {
        context: bobContext,
        label: 'bob',
        ignoreErrors: OFFLINE_ERRORS,
      });
      await Promise.all([connected(alice, 'Alice'), connected(bob, 'Bob')]);

      // The addresses cross over through the DOM, as people would paste them.
      const aliceAddress = await text(alice, 'own-address');
      const bobAddress = await text(bob, 'own-address');
      expect(parseAddress(aliceAddress).deviceId).toBe(1);
      expect(parseAddress(bobAddress).deviceId).toBe(1);
      expect(aliceAddress).not.toBe(bobAddress);
      await openChat(alice, bobAddress);
      await openChat(bob, aliceAddress);

      // One safety number on both screens, in groups of five, the one the two keys give.
      const aliceSees = await text(alice, 'safety-number');
      const bobSees = await text(bob, 'safety-number');
      expect(aliceSees).toMatch(/^(\d{5} ){11}\d{5}$/);
      expect(bobSees).toBe(aliceSees);
      const party = (address: string) => ({
        identityKey: new IdentityPublicKey(parseAddress(address).identityKey),
        stableId: address.slice(0, address.indexOf('.')),
      });
      expect(aliceSees).toBe(formatSafetyNumber(safetyNumber(party(aliceAddress), party(bobAddress))));

      // Both ways, and "delivered" means the other side's receipt came back.
      await send(alice, 'Hi Bob, can you read this?');
      await countIs(bob, 'Bob', 'in', 1);
      await send(bob, 'Loud and clear.');
      await countIs(alice, 'Alice', 'in', 1);
      await Promise.all([allSent(alice, 'Alice', 'delivered'), allSent(bob, 'Bob', 'delivered')]);
      expect(await received(bob)).toEqual(['Hi Bob, can you read this?']);
      expect(await received(alice)).toEqual(['Loud and clear.']);

      // Bob's browser loses the network; his page notices.
      await bobContext.setOffline(true);
      const wentOffline = Date.now();
      await until(
        bob,
        "Bob's page shows it is offline",
        () => {
          const state = document.querySelector<HTMLElement>('[data-testid="connection"]')?.dataset.state;
          return state === 'disconnected' || state === 'connecting';
        },
        undefined,
      );

      const offline = [1, 2, 3, 4, 5].map((n) => `While you were away, ${n} of 5`);
      for (const m of offline) await send(alice, m);
      await countIs(alice, 'Alice', 'out', 6);
      await until(
        alice,
        "the relay stored Alice's five",
        () =>
          [...document.querySelectorAll<HTMLElement>('[data-testid="message"][data-direction="out"]')]
            .slice(1)
            .every((li) => li.dataset.status === 'stored'),
        undefined,
      );
      // Stored at the relay, not delivered: Bob's page has not seen any of them.
      expect(await received(bob)).toEqual(['Hi Bob, can you read this?']);
      await harness.screenshot(bob, 'chat-bob-offline');

      // Bob is back: everything arrives, once each, in order, and Alice sees it delivered.
      await bobContext.setOffline(false);
      const cameBack = Date.now();
      await connected(bob, 'Bob');
      // For the log only (no timing assertions): how long the page's backoff took to get back.
      console.log(
        `Bob was offline ${cameBack - wentOffline} ms; his page reconnected ${Date.now() - cameBack} ms after the network returned`,
      );
      await countIs(bob, 'Bob', 'in', 6);
      await allSent(alice, 'Alice', 'delivered');
      const bobList = await received(bob);
      expect(bobList).toEqual(['Hi Bob, can you read this?', ...offline]);
      const aliceSent = (await messages(alice)).filter((m) => m.direction === 'out');
      expect(aliceSent.map((m) => m.text)).toEqual(['Hi Bob, can you read this?', ...offline]);
      expect(aliceSent.map((m) => m.status)).toEqual(Array(6).fill('delivered'));
      // The ids Bob shows are the ids Alice's sends resolved with: the same six messages, none twice.
      const bobIds = (await messages(bob)).filter((m) => m.direction === 'in').map((m) => m.id);
      expect(bobIds).toEqual(aliceSent.map((m) => m.id));
      expect(new Set(bobIds).size).toBe(6);

      await harness.screenshot(alice, 'chat-alice');
      await harness.screenshot(bob, 'chat-bob');

      // Bob reloads: the identity, the open conversation and the session come back from this
      // browser profile, and the chat goes on.
      await bob.reload();
      await connected(bob, 'Bob (reloaded)');
      expect(await text(bob, 'own-address')).toBe(bobAddress);
      expect(await text(bob, 'safety-number')).toBe(aliceSees);
      expect(await messages(bob)).toEqual([]); // history lives in the page only
      await send(bob, 'Back after a reload.');
      await countIs(alice, 'Alice', 'in', 2);
      await allSent(bob, 'Bob', 'delivered');
      expect(await received(alice)).toEqual(['Loud and clear.', 'Back after a reload.']);
      // Nothing arrived twice at Bob's reloaded page either.
      expect(await received(bob)).toEqual([]);

      // A second tab in Alice's browser would share her IndexedDB: it waits for the first one.
      const secondTab = await harness.openPage(`${relayUrl}/`, {
        context: aliceContext,
        label: 'alice-tab-2',
      });
      await until(
        secondTab,
        'the second tab says the demo is open elsewhere',
        () => (document.querySelector('[data-testid="status"]')?.textContent ?? '').includes('another tab'),
        undefined,
      );
      expect(await byTestId(secondTab, 'connection').getAttribute('data-state')).toBe('connecting');
      expect(await secondTab.locator('#app').isHidden()).toBe(true);
      await secondTab.close();

      if (process.env.USM_UPDATE_DOCS_SCREENSHOT === '1') {
        await copyFile(join(harness.artifacts, 'chat-alice.png'), join(REPO_ROOT, 'docs', 'web-demo.png'));
      }
      // Closed before the relay stops, so no page sees it go away (and logs a reconnect attempt).
      await Promise.all([aliceContext.close(), bobContext.close()]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a page back online after a backlog past MAX_SKIP, with more mail arriving while it fetches, shows every message once, in order; then a newer kind in its place',
    async () => {
      const bobContext = await harness.newContext({ viewport: { width: 760, height: 900 } });
      const bob = await harness.openPage(`${relayUrl}/`, {
        context: bobContext,
        label: 'bob-backlog',
        ignoreErrors: OFFLINE_ERRORS,
      });
      await connected(bob, 'Bob');
      const bobAddress = await text(bob, 'own-address');
      // Alice writes from a Node program (the same client library), fast enough to build a backlog.
      const aliceStore = new MemoryStore();
      const openAlice = () =>
        MessengerClient.open({
          relayUrl,
          relayIdentityKey: relayKeyHex,
          store: aliceStore,
          fetchIntervalMs: 30_000,
        });
      let alice = await openAlice();
      const receipts = new Set<string>();
      alice.on('delivered', ({ id }) => void receipts.add(id));
      try {
        await alice.connect();
        const ids = [(await alice.send(bobAddress, 'backlog: hello')).id];
        await countIs(bob, 'Bob', 'in', 1);
        await bobContext.setOffline(true);
        await until(
          bob,
          "Bob's page shows it is offline",
          () =>
            document.querySelector<HTMLElement>('[data-testid="connection"]')?.dataset.state !== 'connected',
          undefined,
        );
        const sendWave = async (texts: string[]) => {
          for (let i = 0; i < texts.length; i += 500) {
            const sent = await Promise.all(texts.slice(i, i + 500).map((t) => alice.send(bobAddress, t)));
            ids.push(...sent.map((r) => r.id));
          }
        };
        const backlog = Array.from({ length: BACKLOG }, (_, i) => `backlog ${i}`);
        const live = Array.from({ length: LIVE }, (_, i) => `live ${i}`);
        await sendWave(backlog);
        // Back online: the page pages through its backlog while Alice keeps writing.
        await bobContext.setOffline(false);
        await sendWave(live);
        const total = 1 + BACKLOG + LIVE;
        await countIs(bob, 'Bob', 'in', total);
        const shown = await received(bob);
        expect(shown).toEqual(['backlog: hello', ...backlog, ...live]);
        const shownIds = (await messages(bob)).filter((m) => m.direction === 'in').map((m) => m.id);
        expect(shownIds).toEqual(ids);
        expect(await text(bob, 'client-error')).toBe('');
        const deadline = Date.now() + WAIT_MS;
        while (receipts.size < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(ids.filter((id) => !receipts.has(id))).toEqual([]);

        // A newer version of Alice's app sends a message kind this page does not know (queued in her
        // store the way `send` does it), then a text: the page shows the first as needing a newer
        // version, in its place, and the text right after it (no gap, no reorder wait).
        await alice.close();
        await queueUnknownKind(aliceStore, bobAddress, 200);
        alice = await openAlice();
        await alice.connect();
        await alice.send(bobAddress, 'after the new kind');
        await countIs(bob, 'Bob', 'in', total + 2);
        expect((await received(bob)).slice(-2)).toEqual([
          'This message needs a newer version of the app (message kind 200).',
          'after the new kind',
        ]);
        expect(await text(bob, 'client-error')).toBe('');
        // The end of the list, in the window (a full-page picture of 1,500 messages is megabytes).
        await bob.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
        await bob.screenshot({ path: join(harness.artifacts, 'backlog-bob.png') });
        if (process.env.USM_UPDATE_DOCS_SCREENSHOT === '1') {
          await copyFile(
            join(harness.artifacts, 'backlog-bob.png'),
            join(REPO_ROOT, 'docs', 'web-demo-backlog.png'),
          );
        }
      } finally {
        await alice.close();
        await bobContext.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
