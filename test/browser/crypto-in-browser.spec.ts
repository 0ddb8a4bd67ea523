/**
 * @usm/crypto works unchanged in a browser bundle (issue 2): esbuild bundles it for the browser
 * (libsodium's and hash-wasm's WASM travel inlined in the JavaScript), and a real headless Chromium
 * runs it. The page (pages/crypto-probe.ts) executes; this file holds every expected value:
 *  - ready() picks the WebCrypto AES-256-GCM backend (the page is a secure context);
 *  - known answers: HKDF-SHA-256 (RFC 5869 A.1), Argon2id, Ed25519 (RFC 8032 §7.1 test 1),
 *    X25519 (RFC 7748 §6.1);
 *  - X-Wing: the key pair from a seed equals Node's, and Node decapsulates the browser's ciphertext
 *    to the browser's secret; the safety number equals Node's;
 *  - the Double Ratchet: a conversation with four DH turns and reordering, an encrypted pickle round
 *    trip, a replay and a bit flip refused with their codes; then Bob's pickle moves from the browser
 *    to Node, which decrypts Alice's next message and answers, and the browser decrypts the answer;
 *  - every Wycheproof AES-GCM vector with a 256-bit key and a 96-bit IV through the browser's
 *    WebCrypto backend.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  DoubleRatchet,
  IdentityPublicKey,
  fromHex,
  kemDecapsulate,
  kemKeyPairFromSecret,
  ready,
  safetyNumber,
  toHex,
} from '@usm/crypto';
import type { Page } from 'playwright-core';
import {
  VectorCount,
  describeTest,
  loadWycheproof,
  type WycheproofTest,
} from '../../libs/crypto/test/wycheproof.js';
import { useBrowserHarness } from '../support/browser.js';
import type { AesVector, CryptoProbe, ProbeInput, ProbeReport } from './pages/crypto-probe.js';

const TEST_TIMEOUT_MS = 60_000;

const harness = useBrowserHarness({
  suite: 'crypto-in-browser',
  entries: { 'crypto-probe': 'test/browser/pages/crypto-probe.ts' },
});

/** Ed25519 public keys of RFC 8032 §7.1 tests 1 and 2 (only public keys go into a safety number). */
const RFC8032_PK1 = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC8032_PK2 = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';

const INPUT: ProbeInput = {
  // RFC 5869 Appendix A.1 (test case 1).
  hkdf: {
    ikm: '0b'.repeat(22),
    salt: '000102030405060708090a0b0c',
    info: 'f0f1f2f3f4f5f6f7f8f9',
    length: 42,
  },
  // Small parameters (1 MiB, 2 passes) keep the test quick; the algorithm is the same.
  argon2id: {
    passphrase: 'correct horse battery staple',
    salt: '000102030405060708090a0b0c0d0e0f',
    memoryKiB: 1024,
    iterations: 2,
  },
  // RFC 8032 §7.1 test 1: SECRET KEY || PUBLIC KEY (libsodium's secret key layout), empty message.
  ed25519: {
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60' + RFC8032_PK1,
    message: '',
  },
  // RFC 7748 §6.1.
  x25519: {
    alice: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
    bob: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
  },
  xwingSeed: '7f'.repeat(32),
  safety: { keyA: RFC8032_PK1, idA: 'alice@example.test', keyB: RFC8032_PK2, idB: 'bob@example.test' },
  pickleKey: '42'.repeat(32),
};

const EXPECTED = {
  hkdfPrk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
  hkdfOkm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  // Argon2id v1.3, t=2, m=1024 KiB, p=1, 32 bytes: libsodium's crypto_pwhash (an independent
  // implementation of RFC 9106) gives the same value for these inputs.
  argon2id: '58782fc96f06a6d7fcec4728099f6a788ee98a04f4cd8fa0a27af6db8b7a46b8',
  ed25519Signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  x25519AlicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  x25519BobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  x25519Shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};

/** Calls `cryptoProbe.<method>(arg)` in the page. */
function callProbe<K extends keyof CryptoProbe>(
  page: Page,
  method: K,
  arg: Parameters<CryptoProbe[K]>[0],
): Promise<Awaited<ReturnType<CryptoProbe[K]>>> {
  return page.evaluate(
    ([m, a]) => {
      const probe = (globalThis as unknown as { cryptoProbe: Record<string, (x: unknown) => unknown> })
        .cryptoProbe;
      return probe[m]!(a);
    },
    [method, arg] as const,
  ) as Promise<Awaited<ReturnType<CryptoProbe[K]>>>;
}

async function openProbe(label: string): Promise<{ page: Page; requested: string[] }> {
  const context = await harness.newContext();
  const requested: string[] = [];
  context.on('request', (req) => requested.push(req.url()));
  const page = await harness.openPage('/crypto-probe.html', {
    context,
    label,
    waitFor: 'globalThis.cryptoProbe !== undefined',
  });
  return { page, requested };
}

describe('@usm/crypto in headless Chromium', () => {
  beforeAll(async () => {
    await ready();
  });

  it(
    'bundles libsodium and hash-wasm with their WASM inlined: the page fetches nothing else',
    async () => {
      const inputs = harness.bundle.inputs;
      expect(inputs.some((f) => f.includes('node_modules/libsodium-sumo/'))).toBe(true);
      expect(inputs.some((f) => f.includes('node_modules/hash-wasm/'))).toBe(true);
      expect(inputs).toContain('libs/crypto/src/index.ts'); // @usm/crypto resolved to its source
      expect(inputs.some((f) => f.endsWith('.wasm'))).toBe(false);

      const { page, requested } = await openProbe('bundle');
      expect(await page.evaluate(() => typeof (globalThis as { cryptoProbe?: unknown }).cryptoProbe)).toBe(
        'object',
      );
      expect(requested).toEqual([`${harness.url}/crypto-probe.html`, `${harness.url}/crypto-probe.js`]);
      await page.close();
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'runs known answers, X-Wing, the safety number and a Double Ratchet conversation',
    async () => {
      const { page } = await openProbe('probe');
      const report: ProbeReport = await callProbe(page, 'run', INPUT);
      await harness.screenshot(page, 'crypto-probe');

      expect(report.secureContext).toBe(true);
      expect(report.aesBackend).toBe('webcrypto');

      expect(report.hkdf).toEqual({
        prk: EXPECTED.hkdfPrk,
        okm: EXPECTED.hkdfOkm,
        oneShot: EXPECTED.hkdfOkm,
      });
      expect(report.argon2id).toBe(EXPECTED.argon2id);
      expect(report.ed25519).toEqual({
        signature: EXPECTED.ed25519Signature,
        verifies: true,
        tamperedVerifies: false,
      });
      expect(report.x25519).toEqual({
        alicePublic: EXPECTED.x25519AlicePublic,
        bobPublic: EXPECTED.x25519BobPublic,
        aliceShared: EXPECTED.x25519Shared,
        bobShared: EXPECTED.x25519Shared,
      });

      // X-Wing: same key pair from the seed as in Node; Node opens what the browser encapsulated.
      const nodeKem = kemKeyPairFromSecret(fromHex(INPUT.xwingSeed));
      expect(report.xwing.publicKey).toBe(toHex(nodeKem.publicKey.bytes));
      expect(report.xwing.decapsulatedSecret).toBe(report.xwing.encapsulatedSecret);
      expect(toHex(kemDecapsulate(nodeKem.secretKey, fromHex(report.xwing.ciphertext)))).toBe(
        report.xwing.encapsulatedSecret,
      );

      // The safety number: the same 60 digits on both sides, and the same as Node computes.
      const nodeSafety = safetyNumber(
        { identityKey: new IdentityPublicKey(fromHex(INPUT.safety.keyA)), stableId: INPUT.safety.idA },
        { identityKey: new IdentityPublicKey(fromHex(INPUT.safety.keyB)), stableId: INPUT.safety.idB },
      );
      expect(nodeSafety).toMatch(/^\d{60}$/);
      expect(report.safetyNumber).toEqual({ aSide: nodeSafety, bSide: nodeSafety });

      const r = report.ratchet;
      expect(r.delivered).toEqual([
        'bob:a1',
        'bob:a3',
        'bob:a2',
        'alice:b2',
        'alice:b1',
        'bob:a4',
        'alice:b3',
        'bob:a5',
      ]);
      expect(r.dhTurns).toBe(4);
      expect(r.pickleRoundTripExact).toBe(true);
      expect(r.replayError).toBe('DUPLICATE_MESSAGE');
      expect(r.bitFlipError).toBe('BAD_MAC');

      // Bob's encrypted pickle moves from the browser to Node, which carries the conversation on.
      const pickleKey = fromHex(INPUT.pickleKey);
      const nodeBob = await DoubleRatchet.fromPickle(fromHex(r.bobPickle), pickleKey);
      expect(new TextDecoder().decode(await nodeBob.decrypt(fromHex(r.pendingForBob)))).toBe('a6 for node');
      const reply = await nodeBob.encrypt(new TextEncoder().encode('b4 from node'));
      expect(await callProbe(page, 'receiveInBrowser', toHex(reply))).toBe('b4 from node');
      await page.close();
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'passes every Wycheproof AES-GCM vector (256-bit key, 96-bit IV) on the browser WebCrypto backend',
    async () => {
      type AeadTest = WycheproofTest & Omit<AesVector, 'tcId' | 'result'>;
      const file = loadWycheproof<{ keySize: number; ivSize: number; tagSize: number; tests: AeadTest[] }>(
        'aes_gcm_test.json',
      );
      const tests = file.testGroups
        .filter((g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128)
        .flatMap((g) => g.tests);
      expect(tests.length).toBeGreaterThan(0);
      const vectors: AesVector[] = tests.map((t) => ({
        tcId: t.tcId,
        key: t.key,
        iv: t.iv,
        aad: t.aad,
        msg: t.msg,
        ct: t.ct,
        tag: t.tag,
        result: t.result,
      }));

      const { page } = await openProbe('aes-gcm');
      const { backend, outcomes } = await callProbe(page, 'aesGcmVectors', vectors);
      await harness.screenshot(page, 'aes-gcm-vectors');
      expect(backend).toBe('webcrypto');
      expect(outcomes.map((o) => o.tcId)).toEqual(tests.map((t) => t.tcId));

      const count = new VectorCount('aes_gcm_test.json [webcrypto in Chromium, 256-bit key, 96-bit IV]');
      const failures: string[] = [];
      tests.forEach((t, i) => {
        const outcome = outcomes[i]!;
        count.add(t.result);
        if (t.result === 'valid') {
          if (outcome.sealed !== t.ct + t.tag) failures.push(`${describeTest(t)}: wrong ciphertext or tag`);
          if (outcome.opened !== t.msg) failures.push(`${describeTest(t)}: did not decrypt to the plaintext`);
        } else if (t.result === 'invalid') {
          if (outcome.opened !== 'error:BAD_MAC')
            failures.push(`${describeTest(t)}: not refused with BAD_MAC`);
        } else {
          failures.push(
            `${describeTest(t)}: an "acceptable" vector, which this file is not expected to have`,
          );
        }
      });
      console.log(`wycheproof ${count}`);
      expect(failures).toEqual([]);
      expect(count.valid).toBeGreaterThan(0);
      expect(count.invalid).toBeGreaterThan(0);
      await page.close();
    },
    TEST_TIMEOUT_MS,
  );
});
