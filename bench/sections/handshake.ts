/**
 * Handshake: how long a client waits from opening a socket to holding an authenticated address,
 * over loopback: socket.io connect (websocket), `handshake:init` (the relay verifies the Init,
 * remembers its nonce in PostgreSQL, signs its Response) and `handshake:complete`. Sequential
 * runs, one new identity and one new socket each, against one node of the built sample relay.
 */
import { formatNumber } from '../lib/report.js';
import { type ClientSocket, authenticate, connectSocket } from '../lib/fleet.js';
import { quantile } from '../lib/load.js';
import { now, settle } from '../lib/measure.js';
import { freshDatabase } from '../lib/postgres.js';
import { relayIdentity, startRelayNode } from '../lib/relay-node.js';
import { defineSection, type SectionContext } from '../lib/section.js';
import { generateIdentityKeyPair } from '@usm/crypto';

const runs = (quick: boolean) => (quick ? 300 : 2_000);
const WARMUP = 100;

async function run(ctx: SectionContext): Promise<void> {
  ctx.step('starting PostgreSQL and a relay node');
  const db = await freshDatabase('handshake');
  const node = await startRelayNode(db.url);
  const { keyPair } = await relayIdentity();
  try {
    const total = runs(ctx.quick);
    const samples: number[] = [];
    const connectSamples: number[] = [];
    const sockets: ClientSocket[] = [];
    ctx.step(`${WARMUP} warm-up handshakes`);
    for (let i = 0; i < WARMUP + total; i++) {
      if (i === WARMUP) {
        for (const s of sockets.splice(0)) s.close();
        settle();
        ctx.step(`${total} handshakes`);
      }
      const identity = generateIdentityKeyPair();
      const t0 = now();
      const socket = await connectSocket(node.url);
      const t1 = now();
      await authenticate(socket, identity, keyPair.publicKey);
      const t2 = now();
      if (i >= WARMUP) {
        samples.push(t2 - t0);
        connectSamples.push(t1 - t0);
      }
      // Closed in batches, off the timed path.
      sockets.push(socket);
      if (sockets.length >= 100) for (const s of sockets.splice(0)) s.close();
      if (i % 200 === 0) ctx.status(`handshake ${i}/${WARMUP + total}`);
    }
    for (const s of sockets) s.close();
    samples.sort((a, b) => a - b);
    connectSamples.sort((a, b) => a - b);
    ctx.record('median_ms', quantile(samples, 0.5));
    ctx.record('p99_ms', quantile(samples, 0.99));
    ctx.record('connect_median_ms', quantile(connectSamples, 0.5));
    ctx.record('runs', total);
  } finally {
    await node.stop();
  }
}

export const handshake = defineSection({
  id: 'handshake',
  title: 'Handshake: client to relay, over loopback',
  description:
    'Sequential handshakes against one node of the built sample relay (a child process, rate limits ' +
    'off) on PostgreSQL: each opens a new socket.io websocket, sends `handshake:init` (the relay checks the ' +
    "Init's signature and timestamp, stores its nonce in PostgreSQL and signs a Response) and " +
    '`handshake:complete` (both MACs, the transcript signature, the socket joins its mailbox room). ' +
    'Timed from the connect call to the `handshake:complete` reply; a new identity per run, generated ' +
    'outside the timed part. The first 100 runs warm up and are not counted.',
  packages: ['socket.io', 'socket.io-client'],
  quickBudgetSeconds: 20,
  metrics: [
    { key: 'median_ms', label: 'connect + init + complete, median', unit: 'ms', goal: { op: '<', value: 5 } },
    { key: 'p99_ms', label: 'connect + init + complete, p99', unit: 'ms' },
    { key: 'connect_median_ms', label: 'of which socket.io connect, median', unit: 'ms' },
    { key: 'runs', label: 'handshakes measured', unit: '' },
  ],
  plan: () => 3,
  run,
  docs: (v) =>
    v.median_ms === undefined
      ? ''
      : `The seed's target was under 500 ms; ours is under 5 ms at the median. The socket.io ` +
        `connect alone takes ${formatNumber(v.connect_median_ms ?? 0, 2)} ms of it.`,
});
