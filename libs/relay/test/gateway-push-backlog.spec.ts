/**
 * Push flow control end to end: a recipient whose client stops reading (its websocket's TCP
 * socket paused) while a sender keeps sending large envelopes. The relay holds a bounded backlog
 * for that socket, withholds the pushes past its cap (counted), and once the recipient reads
 * again sends it one `mail:sync`; fetching every page then returns every message exactly once.
 */
import {
  type FetchResult,
  MAX_FETCH_PAGE_BYTES,
  type MailItem,
  formatMessageId,
  peekEnvelopeRoute,
} from '@usm/protocol';
import type WebSocket from 'ws';
import { usePostgres } from '../../../test/support/postgres.js';
import { RelayMetrics } from '../src/metrics/metrics.service.js';
import { PushFlowControl, pushBacklog } from '../src/push/push-flow-control.js';
import type { RelaySocket } from '../src/relay.gateway.js';
import {
  type ClientSocket,
  type RelayNode,
  client,
  closeAll,
  envelopeTo,
  next,
  ok,
  request,
  startRelay,
} from './relay-client.js';

const CAP_BYTES = 256 * 1024;
const CAP_ITEMS = 64;
/** Ciphertext per envelope: a push of one such envelope is two engine.io packets, about 60 KiB. */
const CIPHERTEXT_BYTES = 60 * 1024;
/** Sends after the recipient's socket fell behind: all of them must be withheld. */
const SENDS_WHILE_BEHIND = 20;
/** A bound on the sends it may take the paused socket to fall behind (loopback kernel buffers first). */
const MAX_SENDS = 2_000;

/** The ws WebSocket under a socket.io-client socket on the websocket transport (Node). */
function wsOf(socket: ClientSocket): WebSocket {
  return (socket.io.engine.transport as unknown as { ws: WebSocket }).ws;
}

describe('relay gateway: push flow control for a recipient that stops reading', () => {
  let node: RelayNode;
  // Declared before usePostgres: after-all hooks run in declaration order, the node before the database.
  afterAll(() => node?.close());
  const pg = usePostgres();
  beforeAll(async () => {
    node = await startRelay(pg.url, {
      socket: { adapter: 'none' },
      mail: { pushBacklogBytes: CAP_BYTES, pushBacklogItems: CAP_ITEMS },
    });
  });

  const counter = async (pattern: RegExp): Promise<number> =>
    Number(pattern.exec(await node.app.get(RelayMetrics).metrics())?.[1] ?? 0);

  it('holds a bounded backlog, withholds and counts the rest, syncs once after the drain, and fetch returns every message once', async () => {
    const alice = await client(node.url);
    const bob = await client(node.url);
    try {
      const flow = node.app.get(PushFlowControl);
      const sockets = node.gateway.io!.of('/').sockets;
      const relaySide = [...sockets.values()].find((s) => s.data.address === bob.address) as RelaySocket;
      expect(relaySide).toBeDefined();

      // What the relay holds for Bob's socket, sampled at every packet it queues for it.
      let maxBytes = 0;
      let maxItems = 0;
      const sample = () => {
        const { bytes, items } = pushBacklog(relaySide);
        maxBytes = Math.max(maxBytes, bytes);
        maxItems = Math.max(maxItems, items);
      };
      (relaySide.conn as unknown as NodeJS.EventEmitter).on('packetCreate', sample);

      const pushed: MailItem[] = [];
      const syncs: unknown[] = [];
      bob.socket.on('mail', ({ mail }) => void pushed.push(...mail));
      bob.socket.on('mail:sync', (payload) => void syncs.push(payload));

      // Bob stops reading: his TCP socket is paused, so the kernel's buffers fill, then the relay's.
      wsOf(bob.socket).pause();
      const sent: string[] = [];
      const send = async () => {
        const envelope = envelopeTo(bob.address, CIPHERTEXT_BYTES);
        const { results } = ok(await request(alice.socket, 'send', { envelopes: [envelope] }));
        expect(results[0]!.status).toBe('stored');
        sent.push(formatMessageId(peekEnvelopeRoute(envelope).id));
        sample();
      };
      while (!flow.isBehind(relaySide) && sent.length < MAX_SENDS) await send();
      expect(flow.isBehind(relaySide)).toBe(true);
      for (let i = 0; i < SENDS_WHILE_BEHIND; i++) await send();

      // Bounded: under the caps plus the one push that crossed them (two packets of one envelope).
      expect(maxBytes).toBeGreaterThanOrEqual(CAP_BYTES);
      expect(maxBytes).toBeLessThan(CAP_BYTES + MAX_FETCH_PAGE_BYTES);
      expect(maxItems).toBeLessThanOrEqual(CAP_ITEMS + 2);
      const withheld = await counter(/usm_relay_messages_total\{event="withheld"\} (\d+)/);
      expect(withheld).toBeGreaterThan(SENDS_WHILE_BEHIND);
      expect(pushed).toHaveLength(0);

      // Bob reads again: every push queued before the cap arrives, then one mail:sync.
      const synced = next(bob.socket, 'mail:sync');
      wsOf(bob.socket).resume();
      expect(await synced).toEqual({ reason: 'backlog' });
      expect(flow.isBehind(relaySide)).toBe(false);
      // Each message was either pushed before the sync or withheld.
      expect(pushed.length + withheld).toBe(sent.length);

      // Fetching every page returns every stored message exactly once: none lost.
      const fetched: string[] = [];
      let cursor: string | null = null;
      do {
        const page: FetchResult = ok(await request(bob.socket, 'fetch', cursor === null ? {} : { cursor }));
        for (const m of page.mail) fetched.push(formatMessageId(peekEnvelopeRoute(m.envelope).id));
        cursor = page.cursor;
      } while (cursor !== null);
      expect(fetched).toHaveLength(sent.length);
      expect(new Set(fetched)).toEqual(new Set(sent));
      expect(syncs).toEqual([{ reason: 'backlog' }]);
      expect(await counter(/usm_relay_mail_sync_total\{reason="backlog"\} (\d+)/)).toBe(1);
    } finally {
      closeAll(alice.socket, bob.socket);
    }
  });
});
