/**
 * The web demo builds with its own build command (build.mjs, as `npm run build -w apps/web-demo`)
 * and boots in headless Chromium: the crypto core loads, the page shows "crypto ready", this
 * device's address and its half of every safety number, which Node recomputes from the address.
 */
import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IdentityPublicKey, fingerprintDigits, formatSafetyNumber, ready } from '@usm/crypto';
import { parseAddress } from '@usm/protocol';
import type { Page } from 'playwright-core';
import { useBrowserHarness } from '../../../test/support/browser.js';
import { REPO_ROOT, run } from '../../../test/support/pack.js';

const TEST_TIMEOUT_MS = 60_000;
const BUILD_TIMEOUT_MS = 60_000;

// Built into a scratch folder (not apps/web-demo/dist, which belongs to whoever builds the app).
// This beforeAll is registered before the harness's, so the folder is built before it is served.
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

const harness = useBrowserHarness({ suite: 'web-demo-boot', staticDir: outdir });

async function device(page: Page) {
  return page.evaluate(() => {
    const text = (id: string) => document.getElementById(id)?.textContent ?? '';
    return {
      status: text('status'),
      address: text('address'),
      fingerprint: text('fingerprint'),
      aesBackend: text('aes-backend'),
      storage: text('storage'),
      deviceShown: document.getElementById('device')?.hidden === false,
    };
  });
}

const READY = "document.getElementById('status')?.dataset.state === 'ready'";

describe('web demo', () => {
  beforeAll(async () => {
    await ready();
  });

  it('builds dist/index.html and dist/app.js', async () => {
    expect((await readdir(outdir)).sort()).toEqual(['app.js', 'app.js.map', 'index.html']);
    expect(buildOutput).toMatch(/app\.js \d+ KiB/);
  });

  it(
    'boots in Chromium: crypto ready, and this device shows its safety-number half',
    async () => {
      const page = await harness.openPage('/', { label: 'device-a', waitFor: READY });
      const shown = await device(page);
      await harness.screenshot(page, 'web-demo-boot');

      expect(shown.status).toBe('crypto ready');
      expect(shown.deviceShown).toBe(true);
      expect(shown.aesBackend).toBe('webcrypto');
      expect(shown.storage).toBe('IndexedDB ready');
      expect(shown.fingerprint).toMatch(/^(\d{5} ){5}\d{5}$/);

      // Node recomputes the digits from the address the page shows: the same identity key, the same
      // stable id (the address without its device id), the same 30 digits.
      const address = parseAddress(shown.address);
      expect(address.deviceId).toBe(1);
      const stableId = shown.address.slice(0, shown.address.indexOf('.'));
      const expected = fingerprintDigits(
        new IdentityPublicKey(address.identityKey).encode(),
        new TextEncoder().encode(stableId),
      );
      expect(shown.fingerprint).toBe(formatSafetyNumber(expected));

      // A second browser context is another device: another identity, other digits.
      const other = await device(await harness.openPage('/', { label: 'device-b', waitFor: READY }));
      expect(other.status).toBe('crypto ready');
      expect(other.address).not.toBe(shown.address);
      expect(other.fingerprint).not.toBe(shown.fingerprint);
    },
    TEST_TIMEOUT_MS,
  );
});
