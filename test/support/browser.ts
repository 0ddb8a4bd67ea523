/**
 * Test support: run code in a real headless Chromium (Debian's `chromium`, driven by playwright-core).
 *
 * What it does, in one harness per test file:
 *  1. bundles browser entry points with esbuild (platform browser, ESM, everything bundled; `@usm/*`
 *     resolve to their sources through tsconfig.json's `paths`, as in jest), kept in memory;
 *  2. serves the bundle (and optionally a directory such as apps/web-demo/dist) from a tiny node:http
 *     static server on 127.0.0.1 with a random port (127.0.0.1 is a secure context: WebCrypto exists);
 *  3. launches Chromium with the flags this closed network needs and a fresh, throw-away profile;
 *  4. watches every page: console errors, uncaught page errors, crashes and failed requests are
 *     collected, and `assertNoErrors()` (registered in afterEach by `useBrowserHarness`) fails the test
 *     on any of them (a request aborted by a navigation or by closing its page is only logged);
 *  5. writes screenshots and each page's console log (`pages.log`) to `test-artifacts/<suite>/`
 *     (git-ignored; CI keeps it as an artifact; override the root with USM_TEST_ARTIFACTS) and prints
 *     that path. Pages must never log a key or a plaintext: their console output lands in that file;
 *  6. closes contexts, the browser and the server in afterAll. The artifacts stay.
 *
 * No fixed sleeps anywhere: waits are for a condition (a page function, an event) with a bounded
 * timeout, and a page error ends a wait at once instead of letting it time out.
 *
 * When Chromium is missing the harness FAILS (never skips) with the command that installs it.
 *
 * ## API
 *
 * `useBrowserHarness(options)` registers beforeAll / afterEach / afterAll and returns a handle:
 *  - options.suite: name of the artifact folder (`test-artifacts/<suite>/`).
 *  - options.entries: `{ name: 'path/to/entry.ts' }`, bundled to `/<name>.js`, each with a generated
 *    page `/<name>.html` that loads it as a module (and has an empty favicon, so no 404 is logged).
 *  - options.staticDir: a directory served as is, for files the bundle does not provide (a built app).
 *    It is read in beforeAll, so a beforeAll registered before `useBrowserHarness` may build it
 *    (apps/web-demo/test/boot.spec.ts does).
 *  - options.routes: extra in-memory files, `{ '/path': 'content' }`.
 *  - options.define / options.alias: passed to esbuild (e.g. a relay URL baked into a page).
 *  - options.ignoreErrors: RegExps of console / page / request errors that do not fail a test (use
 *    narrowly, e.g. /ERR_INTERNET_DISCONNECTED/ for a context that is deliberately offline).
 * The handle (valid from beforeAll on):
 *  - `url`: the server's origin, `http://127.0.0.1:<port>`.
 *  - `browser`: the playwright Browser; `artifacts`: the artifact folder's absolute path.
 *  - `bundle`: the esbuild output (served files, entry sizes, inputs read) for assertions on the build.
 *  - `newContext(options?)`: a fresh BrowserContext (own storage, own IndexedDB; `setOffline` works on
 *    it), closed in afterAll. Two contexts are two independent "devices".
 *  - `openPage(path, { context?, waitFor?, timeoutMs?, ignoreErrors?, label? })`: opens `url + path`
 *    (or `path` itself when it is an absolute URL, e.g. the sample relay app serving the demo) in a new
 *    watched page (in a new context unless one is given) and, when `waitFor` (a JavaScript expression
 *    evaluated in the page, e.g. `'globalThis.probe !== undefined'`) is given, waits until it is truthy,
 *    failing at once with the page's error if the page throws first.
 *  - `screenshot(page, name)`: a full-page PNG `<artifacts>/<name>.png`; returns its path.
 *  - `errors()`: the errors collected so far; `assertNoErrors()`: throws listing them (and clears them).
 *  - `watch(page, label)`: watches a page that was opened some other way (e.g. `context.newPage()`).
 * Lower-level pieces are exported too: `requireChromium`, `launchChromium`, `bundleForBrowser`,
 * `serveStatic`, `artifactsDir`.
 *
 * @example
 * const harness = useBrowserHarness({ suite: 'my-suite', entries: { probe: 'test/browser/pages/probe.ts' } });
 * it('runs in the browser', async () => {
 *   const page = await harness.openPage('/probe.html', { waitFor: 'globalThis.probe !== undefined' });
 *   const report = await page.evaluate(() => (globalThis as any).probe.run());
 *   await harness.screenshot(page, 'probe');
 *   expect(report).toEqual({ ok: true });
 * });
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { build } from 'esbuild';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from 'playwright-core';
import { REPO_ROOT } from './pack.js';

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a machine without a display or an open network: without the
 * background-networking ones Chromium keeps trying to reach Google services and misbehaves.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Bounds for every wait: generous for a loaded CI machine, but a hang still fails in time. */
export const BROWSER_LAUNCH_TIMEOUT_MS = 30_000;
export const PAGE_TIMEOUT_MS = 30_000;

export const INSTALL_CHROMIUM_HINT =
  "The browser tests need Debian's Chromium: run `apt-get update && apt-get install -y --no-install-recommends chromium` " +
  '(as root; .ci/run does this on CI machines), or set CHROMIUM_PATH to a Chromium executable.';

/** Returns the Chromium path, or throws saying how to install it. */
export function requireChromium(path: string = CHROMIUM_PATH): string {
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${path} (or not executable). ${INSTALL_CHROMIUM_HINT}`);
  }
  return path;
}

/** Launches headless Chromium with CHROMIUM_ARGS; playwright gives it a fresh temporary profile. */
export async function launchChromium(executablePath: string = requireChromium()): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: [...CHROMIUM_ARGS],
    timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  });
}

export interface BrowserBundle {
  /** Served path ('/name.js', '/name.js.map') -> content. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Bytes of each entry's JavaScript, by entry name. */
  readonly sizes: Readonly<Record<string, number>>;
  /** Every input esbuild read, relative to the repository (to check what went in). */
  readonly inputs: readonly string[];
}

export interface BundleOptions {
  /** `{ name: 'path/relative/to/repo.ts' }`, each bundled to `/<name>.js`. */
  readonly entries: Readonly<Record<string, string>>;
  /** esbuild `define` (values are JavaScript expressions, e.g. JSON.stringify(url)). */
  readonly define?: Readonly<Record<string, string>>;
  /** esbuild `alias`. */
  readonly alias?: Readonly<Record<string, string>>;
}

/**
 * Bundles entry points for the browser (ESM, everything bundled, ES2022, linked source maps), in
 * memory. `@usm/*` resolve to sources through tsconfig.json's `paths`. A warning fails the build:
 * one usually means a Node-only import slipped into browser code.
 */
export async function bundleForBrowser(options: BundleOptions): Promise<BrowserBundle> {
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: Object.fromEntries(Object.entries(options.entries)),
    outdir: join(REPO_ROOT, '.scratch', 'browser-bundle'), // nothing is written (write: false)
    write: false,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    tsconfig: join(REPO_ROOT, 'tsconfig.json'),
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    define: { ...options.define },
    alias: { ...options.alias },
  });
  if (result.warnings.length > 0) {
    throw new Error(
      `esbuild warned while bundling for the browser:\n${result.warnings
        .map((w) => `${w.location?.file ?? '?'}:${w.location?.line ?? '?'}: ${w.text}`)
        .join('\n')}`,
    );
  }
  const outdir = join(REPO_ROOT, '.scratch', 'browser-bundle');
  const files = new Map<string, Uint8Array>();
  const sizes: Record<string, number> = {};
  for (const file of result.outputFiles) {
    const served = '/' + relative(outdir, file.path).split(sep).join('/');
    files.set(served, file.contents);
    const entry = served.match(/^\/(.+)\.js$/)?.[1];
    if (entry !== undefined && entry in options.entries) sizes[entry] = file.contents.length;
  }
  return { files, sizes, inputs: Object.keys(result.metafile.inputs) };
}

export interface StaticServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * A static file server on 127.0.0.1 with a random port: in-memory `routes` first, then files under
 * `root` (never outside it). GET and HEAD only; `/` serves `/index.html`; `/favicon.ico` is an empty
 * 204 unless provided, so Chromium logs no 404. No caching, so every page load sees the current build.
 */
export async function serveStatic(options: {
  root?: string;
  routes?: ReadonlyMap<string, Uint8Array | string>;
}): Promise<StaticServer> {
  const root = options.root === undefined ? undefined : await realpath(options.root);
  const routes = options.routes ?? new Map<string, Uint8Array | string>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const headers = { 'cache-control': 'no-store' };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...headers, allow: 'GET, HEAD' }).end();
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      } catch {
        res.writeHead(400, headers).end();
        return;
      }
      if (path === '/') path = '/index.html';
      const type = CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
      let body = routes.get(path);
      if (body === undefined && root !== undefined) {
        const file = normalize(join(root, path));
        if (file.startsWith(root + sep)) {
          const info = await stat(file).catch(() => undefined);
          if (info?.isFile()) body = await readFile(file);
        }
      }
      if (body === undefined) {
        res.writeHead(path === '/favicon.ico' ? 204 : 404, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-type': type });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/**
 * `test-artifacts/<suite>/` at the repository root (USM_TEST_ARTIFACTS replaces `test-artifacts`),
 * emptied first so that it holds only this run's files.
 */
export async function artifactsDir(suite: string): Promise<string> {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(suite)) throw new Error(`artifact suite name not allowed: ${suite}`);
  const base = process.env.USM_TEST_ARTIFACTS ?? join(REPO_ROOT, 'test-artifacts');
  const dir = join(isAbsolute(base) ? base : resolve(REPO_ROOT, base), suite);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The generated page for a bundle entry: loads `/<name>.js` as a module, nothing else. */
export function entryPage(name: string): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><link rel="icon" href="data:,">',
    `<title>${name}</title></head>`,
    `<body><main id="app"></main><script type="module" src="/${name}.js"></script></body>`,
    '</html>',
    '',
  ].join('\n');
}

export interface BrowserHarnessOptions extends Partial<BundleOptions> {
  /** Artifact folder name: `test-artifacts/<suite>/`. */
  readonly suite: string;
  /** A directory served as is (after the bundle and routes), e.g. a built app's dist/. */
  readonly staticDir?: string;
  /** Extra in-memory files, `{ '/path': content }`. */
  readonly routes?: Readonly<Record<string, string | Uint8Array>>;
  /** Errors matching any of these do not fail a test (they are still written to the page log). */
  readonly ignoreErrors?: readonly RegExp[];
}

export interface OpenPageOptions {
  /** The context to open the page in; a new one (a fresh "device") when absent. */
  readonly context?: BrowserContext;
  /** A JavaScript expression evaluated in the page; openPage resolves once it is truthy. */
  readonly waitFor?: string;
  /** Bound for navigation and `waitFor`. @default PAGE_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Errors of this page that do not fail the test, besides the harness's ignoreErrors. */
  readonly ignoreErrors?: readonly RegExp[];
  /** Label in error reports and the page's log file. @default the path */
  readonly label?: string;
}

export interface BrowserHarness {
  readonly url: string;
  readonly browser: Browser;
  readonly artifacts: string;
  readonly bundle: BrowserBundle;
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  openPage(path: string, options?: OpenPageOptions): Promise<Page>;
  watch(page: Page, label: string, ignoreErrors?: readonly RegExp[]): void;
  screenshot(page: Page, name: string): Promise<string>;
  errors(): readonly string[];
  assertNoErrors(): void;
}

interface WatchedPage {
  readonly label: string;
  readonly log: string[];
  /** Rejects with the first error of the page (used to end waits early). */
  readonly failed: Promise<never>;
}

class Harness implements BrowserHarness {
  readonly #contexts = new Set<BrowserContext>();
  readonly #watched: WatchedPage[] = [];
  #errors: string[] = [];
  #labels = new Map<string, number>();

  constructor(
    readonly url: string,
    readonly browser: Browser,
    readonly artifacts: string,
    readonly bundle: BrowserBundle,
    private readonly ignore: readonly RegExp[],
  ) {}

  async newContext(options?: BrowserContextOptions): Promise<BrowserContext> {
    const context = await this.browser.newContext(options);
    context.setDefaultTimeout(PAGE_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(PAGE_TIMEOUT_MS);
    this.#contexts.add(context);
    context.once('close', () => this.#contexts.delete(context));
    return context;
  }

  watch(page: Page, label: string, ignoreErrors: readonly RegExp[] = []): WatchedPage {
    const n = (this.#labels.get(label) ?? 0) + 1;
    this.#labels.set(label, n);
    const name = n === 1 ? label : `${label}#${n}`;
    const log: string[] = [];
    let reject: (err: Error) => void = () => {};
    const failed = new Promise<never>((_, fail) => (reject = fail));
    failed.catch(() => {}); // observed by waits only; the error list is what fails the test
    const ignored = [...this.ignore, ...ignoreErrors];
    const problem = (kind: string, text: string) => {
      log.push(`[${kind}] ${text}`);
      if (ignored.some((re) => re.test(text))) return;
      const line = `${name}: ${kind}: ${text}`;
      this.#errors.push(line);
      reject(new Error(line));
    };
    page.on('console', (msg) => {
      const location = msg.location();
      const where = location.url ? ` (${location.url}:${location.lineNumber})` : '';
      if (msg.type() === 'error' || msg.type() === 'assert')
        problem(`console.${msg.type()}`, msg.text() + where);
      else log.push(`[console.${msg.type()}] ${msg.text()}`);
    });
    page.on('pageerror', (err) => problem('page error', err.stack ?? err.message));
    page.on('crash', () => problem('crash', 'the page crashed'));
    page.on('requestfailed', (req) => {
      const reason = req.failure()?.errorText ?? 'unknown';
      const line = `${req.method()} ${req.url()}: ${reason}`;
      // A request cut short by a navigation or by closing the page is not a failure of the page.
      if (reason === 'net::ERR_ABORTED') log.push(`[request aborted] ${line}`);
      else problem('request failed', line);
    });
    const watched = { label: name, log, failed };
    this.#watched.push(watched);
    return watched;
  }

  async openPage(path: string, options: OpenPageOptions = {}): Promise<Page> {
    const context = options.context ?? (await this.newContext());
    const page = await context.newPage();
    const timeout = options.timeoutMs ?? PAGE_TIMEOUT_MS;
    const watched = this.watch(page, options.label ?? path, options.ignoreErrors);
    await Promise.race([
      page.goto(new URL(path, this.url).href, { timeout, waitUntil: 'load' }),
      watched.failed,
    ]);
    if (options.waitFor !== undefined) {
      await Promise.race([
        page.waitForFunction(options.waitFor, undefined, { timeout, polling: 50 }),
        watched.failed,
      ]);
    }
    return page;
  }

  async screenshot(page: Page, name: string): Promise<string> {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new Error(`screenshot name not allowed: ${name}`);
    const path = join(this.artifacts, `${name}.png`);
    await page.screenshot({ path, fullPage: true, timeout: PAGE_TIMEOUT_MS });
    return path;
  }

  errors(): readonly string[] {
    return [...this.#errors];
  }

  assertNoErrors(): void {
    const errors = this.#errors;
    this.#errors = [];
    if (errors.length > 0) {
      throw new Error(`the browser reported ${errors.length} error(s):\n${errors.join('\n')}`);
    }
  }

  async close(): Promise<void> {
    for (const context of [...this.#contexts]) await context.close().catch(() => {});
    await this.browser.close().catch(() => {});
    const logs = this.#watched.map((w) => `## ${w.label}\n${w.log.join('\n')}\n`).join('\n');
    await writeFile(join(this.artifacts, 'pages.log'), logs).catch(() => {});
  }
}

/**
 * Registers beforeAll (bundle, serve, launch), afterEach (fail on any browser error) and afterAll
 * (close everything) for this test file, and returns the harness; its members are usable from
 * beforeAll on. See the file comment for the API.
 */
export function useBrowserHarness(options: BrowserHarnessOptions): BrowserHarness {
  let harness: Harness | undefined;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const executable = requireChromium(); // first: a missing browser fails with the fix, fast
    const artifacts = await artifactsDir(options.suite);
    console.log(`browser test artifacts (screenshots, page logs): ${artifacts}`);
    const entries = options.entries ?? {};
    const bundle =
      Object.keys(entries).length > 0
        ? await bundleForBrowser({ entries, define: options.define, alias: options.alias })
        : { files: new Map<string, Uint8Array>(), sizes: {}, inputs: [] };
    const routes = new Map<string, Uint8Array | string>(bundle.files);
    for (const name of Object.keys(entries)) routes.set(`/${name}.html`, entryPage(name));
    for (const [path, body] of Object.entries(options.routes ?? {})) routes.set(path, body);
    server = await serveStatic({ root: options.staticDir, routes });
    browser = await launchChromium(executable);
    harness = new Harness(server.url, browser, artifacts, bundle, options.ignoreErrors ?? []);
  }, BROWSER_LAUNCH_TIMEOUT_MS + 30_000);

  afterEach(() => {
    harness?.assertNoErrors();
  });

  afterAll(async () => {
    if (harness) await harness.close();
    else await browser?.close().catch(() => {});
    await server?.close();
  }, 30_000);

  const live = (): Harness => {
    if (!harness) throw new Error('the browser harness is not started (use it from beforeAll on)');
    return harness;
  };
  return {
    get url() {
      return live().url;
    },
    get browser() {
      return live().browser;
    },
    get artifacts() {
      return live().artifacts;
    },
    get bundle() {
      return live().bundle;
    },
    newContext: (o) => live().newContext(o),
    openPage: (p, o) => live().openPage(p, o),
    watch: (p, l, i) => void live().watch(p, l, i),
    screenshot: (p, n) => live().screenshot(p, n),
    errors: () => live().errors(),
    assertNoErrors: () => live().assertNoErrors(),
  };
}
