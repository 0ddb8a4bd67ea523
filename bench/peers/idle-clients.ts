/**
 * A fleet of idle sockets in a child process (memory section), so the bench process's own file
 * descriptors and memory stay out of the way. Environment: URL, KIND ('relay' | 'bare'),
 * RELAY_KEY (hex, for 'relay'). IPC: `{ type: 'open', count }` opens that many more sockets
 * (relay: each authenticated with a new identity) and answers `{ type: 'opened', total }`;
 * `{ type: 'error', message }` if one fails. Killed by the parent when done.
 */
import { IdentityPublicKey, fromHex, ready } from '@usm/crypto';
import { type ClientSocket, bareClient, inParallel, relayClient } from '../lib/fleet.js';

const url = process.env['URL'] ?? '';
const kind = process.env['KIND'];
const sockets: ClientSocket[] = [];

async function open(count: number): Promise<void> {
  await ready();
  const relayKey =
    kind === 'relay' ? new IdentityPublicKey(fromHex(process.env['RELAY_KEY'] ?? '')) : undefined;
  const ids = Array.from({ length: count }, (_, i) => sockets.length + i);
  const opened = await inParallel(ids, 32, async (i) =>
    relayKey ? (await relayClient(url, relayKey)).socket : bareClient(url, `idle-${process.pid}-${i}`),
  );
  sockets.push(...opened);
}

process.on('message', (message: { type?: string; count?: number }) => {
  if (message?.type !== 'open') return;
  open(message.count ?? 0).then(
    () => process.send?.({ type: 'opened', total: sockets.length }),
    (err: unknown) =>
      process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
});
process.send?.({ type: 'ready' });
