#!/usr/bin/env node
/**
 * Builds the web demo with esbuild: dist/index.html and dist/app.js (+ app.js.map), one ESM bundle
 * holding @usm/client and everything under it, WASM included (inlined by libsodium and hash-wasm).
 * The @usm/* packages resolve to their sources through the repository's tsconfig.json `paths`, so
 * the libraries need no build first.
 *
 * Usage: node apps/web-demo/build.mjs [--outdir <dir>] [--minify]
 *   (npm run build -w apps/web-demo; the sample relay app serves apps/web-demo/dist at /)
 * A bundler warning fails the build: one usually means a Node-only import reached browser code.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');

const { values } = parseArgs({
  options: { outdir: { type: 'string' }, minify: { type: 'boolean', default: false } },
});
const outdir = resolve(values.outdir ?? join(here, 'dist'));

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const result = await build({
  absWorkingDir: repo,
  entryPoints: { app: join(here, 'src', 'main.ts') },
  outdir,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  tsconfig: join(repo, 'tsconfig.json'),
  sourcemap: 'linked',
  minify: values.minify,
  metafile: true,
  logLevel: 'error',
});
if (result.warnings.length > 0) {
  for (const w of result.warnings) {
    console.error(`${w.location?.file ?? '?'}:${w.location?.line ?? '?'}: ${w.text}`);
  }
  console.error(`web-demo: ${result.warnings.length} bundler warning(s); fix them`);
  process.exit(1);
}
await copyFile(join(here, 'src', 'index.html'), join(outdir, 'index.html'));

for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) {
  console.log(`web-demo: ${relative(process.cwd(), resolve(repo, file))} ${(bytes / 1024).toFixed(0)} KiB`);
}
console.log(`web-demo: ${relative(process.cwd(), join(outdir, 'index.html'))}`);
