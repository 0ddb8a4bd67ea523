/**
 * Child processes of the bench (relay nodes, the bare socket.io peer, client fleets): started
 * with an IPC channel, killed at teardown or exit, and measured from outside (VmRSS in
 * /proc/<pid>/status after a GC settle through bench/peers/gc-hook.mjs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from './results.js';
import { onTeardown } from './teardown.js';

export const GC_HOOK = ['--expose-gc', '--import', './bench/peers/gc-hook.mjs'];
/** Runs a TypeScript file of bench/ in a child, as run.ts runs (tsx via bench/register.mjs). */
export const TSX = ['--import', './bench/register.mjs'];

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Everything the child wrote to stderr (and stdout lines not consumed), for error messages. */
  output(): string;
  /** Resolves with the first stdout match of `pattern`; rejects if the child exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Collects garbage in the child (it must run with GC_HOOK), then reads its VmRSS in bytes. */
  rssAfterGc(): Promise<number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
}

/** VmRSS of a process in bytes, from /proc/<pid>/status. */
export function vmRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`bench: no VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}

export function startChild(
  nodeArgs: readonly string[],
  env: Record<string, string> = {},
  name = nodeArgs[nodeArgs.length - 1] ?? 'child',
): Child {
  const child = spawn(process.execPath, [...nodeArgs], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  let log = '';
  let stdout = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8_000);
  };
  child.stderr!.on('data', keep);
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout = (stdout + chunk.toString()).slice(-8_000);
    keep(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));
  const handle: Child = {
    process: child,
    pid: child.pid!,
    output: () => log,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(stdout);
          if (!m) return;
          done();
          resolve(m);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`bench: ${name} did not print ${pattern} within ${timeoutMs} ms:\n${log}`));
        }, timeoutMs);
        const onExit = (code: number | null) => {
          done();
          reject(new Error(`bench: ${name} exited (${code}) before printing ${pattern}:\n${log}`));
        };
        const done = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
    async rssAfterGc() {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: unknown) => {
          if ((m as { type?: string })?.type !== 'gc') return;
          child.off('message', onMessage);
          resolve();
        };
        child.on('message', onMessage);
        child.send({ type: 'gc' }, (err) => err && reject(err));
      });
      return vmRss(child.pid!);
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  onTeardown(() => handle.stop(2_000));
  return handle;
}

/** The bare socket.io forwarder (bench/peers/bare-socketio.mjs) as a child process. */
export async function startBareSocketIo(): Promise<{ url: string; child: Child; stop(): Promise<void> }> {
  const child = startChild([...GC_HOOK, 'bench/peers/bare-socketio.mjs'], {}, 'bare socket.io');
  const m = await child.waitFor(/bare socket\.io listening on port (\d+)/);
  return { url: `http://127.0.0.1:${m[1]}`, child, stop: () => child.stop() };
}
