/**
 * Proof that an outside app can depend on @usm/crypto: `npm pack` the library (its prepack script
 * builds dist/), install the tarball into a fresh ESM project in os.tmpdir(), outside the
 * repository, and use it from a plain Node script (no TypeScript, no path mapping, no jest).
 * The script prints one JSON object of lengths, booleans, error codes and a public RFC vector's
 * output (never a secret), which the tests below check.
 */
import { CryptoErrorCode } from '@usm/crypto';
import { realpath } from 'node:fs/promises';
import {
  createScratchApp,
  createTempRoot,
  isInside,
  libDir,
  packWorkspace,
  type PackedPackage,
  type TempRoot,
} from '../../../test/support/pack.js';
import { withBuildLock } from '../../../test/support/build-lock.js';

/** Packing builds the library and installing may reach the registry on a fresh machine. */
const SETUP_TIMEOUT_MS = 420_000;

/** RFC 5869 Appendix A.1 (HKDF-SHA-256, basic test case). */
const RFC5869_A1 = {
  ikm: '0b'.repeat(22),
  salt: '000102030405060708090a0b0c',
  info: 'f0f1f2f3f4f5f6f7f8f9',
  length: 42,
  okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
};

const SCRIPT = `
import { fileURLToPath } from 'node:url';
import {
  ready, aesGcm, AES_256_KEY_BYTES, GCM_IV_BYTES, CryptoError, CryptoErrorCode,
  generateIdentityKeyPair, sign, verify, generateX25519KeyPair, x25519, X25519PublicKey,
  hkdf, randomBytes, bytesEqual, fromHex, toHex,
} from '@usm/crypto';

const codeOf = (fn) => fn().then(() => 'no error', (err) => (CryptoError.is(err) ? err.code : 'not a CryptoError: ' + err));

await ready();
const out = { resolved: fileURLToPath(import.meta.resolve('@usm/crypto')), aesBackend: aesGcm().name };

// Ed25519: sign and verify; a changed message does not verify.
const alice = generateIdentityKeyPair();
const message = new TextEncoder().encode('an outside app signs with the packed library');
const signature = sign(alice, message);
const changed = message.slice();
changed[0] ^= 1;
out.ed25519 = {
  signatureLength: signature.length,
  valid: verify(alice.publicKey, message, signature),
  changedMessageValid: verify(alice.publicKey, changed, signature),
  publicKeyJson: JSON.stringify(alice.publicKey),
  secretKeyJson: JSON.stringify(alice.secretKey),
};

// X25519: both sides agree; the all-zero result of a low-order point is refused.
const a = generateX25519KeyPair();
const b = generateX25519KeyPair();
const ab = x25519(a.secretKey, b.publicKey);
const ba = x25519(b.secretKey, a.publicKey);
out.x25519 = {
  length: ab.length,
  agree: bytesEqual(ab, ba),
  lowOrderError: await codeOf(async () => x25519(a.secretKey, new X25519PublicKey(new Uint8Array(32)))),
};

// HKDF-SHA-256 on a public known-answer vector.
const v = ${JSON.stringify(RFC5869_A1)};
out.hkdfOkm = toHex(hkdf(fromHex(v.ikm), fromHex(v.salt), fromHex(v.info), v.length));

// AES-256-GCM: seal and open; a flipped ciphertext bit and a changed AAD are refused.
const key = randomBytes(AES_256_KEY_BYTES);
const iv = randomBytes(GCM_IV_BYTES);
const plaintext = new TextEncoder().encode('sealed by an outside app');
const aad = new TextEncoder().encode('associated data');
const sealed = await aesGcm().encrypt(key, iv, plaintext, aad);
const opened = await aesGcm().decrypt(key, iv, sealed, aad);
const flipped = sealed.slice();
flipped[0] ^= 1;
out.aesGcm = {
  overhead: sealed.length - plaintext.length,
  roundTrip: bytesEqual(opened, plaintext),
  flippedBitError: await codeOf(() => aesGcm().decrypt(key, iv, flipped, aad)),
  changedAadError: await codeOf(() => aesGcm().decrypt(key, iv, sealed, new Uint8Array(1))),
  shortIvError: await codeOf(() => aesGcm().encrypt(key, iv.subarray(0, 8), plaintext, aad)),
};

console.log(JSON.stringify(out));
`;

interface ScriptOutput {
  resolved: string;
  aesBackend: string;
  ed25519: {
    signatureLength: number;
    valid: boolean;
    changedMessageValid: boolean;
    publicKeyJson: string;
    secretKeyJson: string;
  };
  x25519: { length: number; agree: boolean; lowOrderError: string };
  hkdfOkm: string;
  aesGcm: {
    overhead: number;
    roundTrip: boolean;
    flippedBitError: string;
    changedAadError: string;
    shortIvError: string;
  };
}

describe('@usm/crypto as an installed package', () => {
  let tmp: TempRoot | undefined;
  let packed: PackedPackage;
  let appDir: string;
  let out: ScriptOutput;

  beforeAll(async () => {
    tmp = await createTempRoot('usm-crypto-pack-');
    // One build of dist/ at a time across jest workers (other specs build and pack too).
    const tarballs = tmp.path('tarballs');
    packed = await withBuildLock(() => packWorkspace(libDir('crypto'), tarballs));
    const app = await createScratchApp(tmp.path('app'), 'usm-crypto-consumer');
    appDir = app.dir;
    await app.install([packed.tarball]);
    const stdout = await app.runScript('use-crypto.mjs', SCRIPT);
    const lastLine = stdout.trim().split('\n').pop() ?? '';
    out = JSON.parse(lastLine) as ScriptOutput;
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('packs compiled JavaScript and declarations only: no sources, no specs, no source maps', () => {
    expect(packed.name).toBe('@usm/crypto');
    expect(packed.files).toContain('package.json');
    expect(packed.files).toContain('dist/index.js');
    expect(packed.files).toContain('dist/index.d.ts');
    const unexpected = packed.files.filter(
      (file) =>
        file !== 'package.json' &&
        !/^README(\.md)?$/i.test(file) &&
        !/^LICEN[CS]E(\.md|\.txt)?$/i.test(file) &&
        !/^dist\/.+\.(js|d\.ts)$/.test(file),
    );
    expect(unexpected).toEqual([]);
    expect(packed.files.filter((file) => /\.spec\.|(^|\/)src\//.test(file))).toEqual([]);
    // Every module ships with its declarations.
    const js = packed.files.filter((file) => file.endsWith('.js'));
    const dts = packed.files.filter((file) => file.endsWith('.d.ts'));
    expect(dts.map((file) => file.replace(/\.d\.ts$/, '.js'))).toEqual(js);
  });

  it('installs outside the repository and resolves @usm/crypto from that install', async () => {
    const tmpRoot = await realpath(tmp?.dir ?? '');
    expect(isInside(appDir, tmpRoot)).toBe(true);
    expect(isInside(out.resolved, `${appDir}/node_modules/@usm/crypto`)).toBe(true);
    expect(out.resolved.endsWith('/dist/index.js')).toBe(true);
  });

  it('signs and verifies with Ed25519, and keys print only their fingerprint', () => {
    expect(out.ed25519.signatureLength).toBe(64);
    expect(out.ed25519.valid).toBe(true);
    expect(out.ed25519.changedMessageValid).toBe(false);
    expect(out.ed25519.publicKeyJson).toMatch(/^"Ed25519PublicKey\([0-9a-f]{16}\)"$/);
    expect(out.ed25519.secretKeyJson).toMatch(/^"Ed25519SecretKey\(public [0-9a-f]{16}\)"$/);
  });

  it('agrees on an X25519 secret and refuses a low-order public key', () => {
    expect(out.x25519.length).toBe(32);
    expect(out.x25519.agree).toBe(true);
    expect(out.x25519.lowOrderError).toBe(CryptoErrorCode.InvalidKey);
  });

  it('derives RFC 5869 A.1 with HKDF-SHA-256', () => {
    expect(out.hkdfOkm).toBe(RFC5869_A1.okm);
  });

  it('seals and opens with AES-256-GCM from node:crypto, refusing tampering and short IVs', () => {
    expect(out.aesBackend).toBe('node:crypto');
    expect(out.aesGcm.overhead).toBe(16);
    expect(out.aesGcm.roundTrip).toBe(true);
    expect(out.aesGcm.flippedBitError).toBe(CryptoErrorCode.BadMac);
    expect(out.aesGcm.changedAadError).toBe(CryptoErrorCode.BadMac);
    expect(out.aesGcm.shortIvError).toBe(CryptoErrorCode.MalformedInput);
  });
});
