import { describe, expect, it } from '@jest/globals';
import type { AddressString, MailItem } from '@usm/protocol';
import type { RelayConnection } from '../connection.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { fakeRuntime, settle } from '../fake-time.test.js';
import { GAP_FETCH_INTERVAL_MS, SYNC_RETRY_MS, SyncLoop } from './sync-loop.js';

const item = (cursor: number): MailItem => ({
  envelope: Uint8Array.of(cursor),
  sender: `${'S'.repeat(43)}.1` as AddressString,
  receivedAt: 0,
  cursor: String(cursor),
});

function setup(reconnect = true) {
  const rt = fakeRuntime();
  const log: string[] = [];
  const mailbox: MailItem[] = [];
  const connection = {
    connected: false,
    starts: 0,
    start: () => void connection.starts++,
    request: (async (event: string, payload: { cursor?: string }) => {
      if (event !== 'fetch') throw new Error(`unexpected ${event}`);
      if (!connection.connected) throw new ClientError(ClientErrorCode.NotConnected, 'offline');
      log.push(`fetch ${payload.cursor ?? 'first'}`);
      const from = payload.cursor === undefined ? -1 : Number(payload.cursor);
      return { mail: mailbox.filter((m) => Number(m.cursor) > from), cursor: null };
    }) as unknown as RelayConnection['request'],
  };
  let prekeysFail: ClientError | undefined;
  const sync = new SyncLoop({
    ...rt,
    connection,
    receive: async (mail) => void log.push(...mail.map((m) => `receive ${m.cursor}`)),
    syncPrekeys: async () => {
      log.push('prekeys');
      if (prekeysFail) throw prekeysFail;
    },
    resumeOutbox: async () => void log.push('outbox'),
    fetchIntervalMs: 30_000,
    reconnect,
  });
  /** The connection comes up and its handshake completes. */
  const up = () => {
    connection.connected = true;
    sync.status({ state: 'connected' });
    sync.authenticated();
  };
  return { rt, log, mailbox, connection, sync, up, failPrekeys: (e?: ClientError) => (prekeysFail = e) };
}

describe('SyncLoop', () => {
  it('after a handshake: prekeys, every page of mail, the outbox; then connect() resolves', async () => {
    const { rt, log, mailbox, connection, sync, up } = setup();
    mailbox.push(item(1), item(2));
    const connecting = sync.connect();
    expect(connection.starts).toBe(1);
    up();
    await connecting;
    expect(log).toEqual(['prekeys', 'fetch first', 'receive 1', 'receive 2', 'outbox']);
    await expect(sync.connect()).resolves.toBeUndefined(); // synced: at once
    expect(rt.time.delays()).toEqual([30_000]);
  });

  it('fetches every fetchIntervalMs while connected, and stops when offline', async () => {
    const { rt, log, sync, up, connection } = setup();
    const connecting = sync.connect();
    up();
    await connecting;
    log.length = 0;
    await rt.time.advance(30_000);
    expect(log).toEqual(['fetch first']);
    connection.connected = false;
    sync.status({ state: 'disconnected', reason: 'transport close' });
    await rt.time.advance(30_000);
    expect(log).toEqual(['fetch first']);
    expect(rt.time.pending).toBe(0);
  });

  it('a sync step that fails on a live connection runs again after SYNC_RETRY_MS', async () => {
    const { rt, log, sync, up, failPrekeys } = setup();
    failPrekeys(new ClientError(ClientErrorCode.NotConnected, 'no reply in time'));
    const connecting = sync.connect();
    up();
    await settle();
    expect(log).toEqual(['prekeys']);
    expect(rt.reported).toEqual([]);
    failPrekeys(undefined);
    await rt.time.advance(SYNC_RETRY_MS);
    await connecting;
    expect(log).toEqual(['prekeys', 'prekeys', 'fetch first', 'outbox']);
  });

  it('connect() rejects when the relay refuses us, or when the connection fails with reconnect off', async () => {
    const refused = setup();
    const a = refused.sync.connect();
    refused.sync.connectionError(new ClientError(ClientErrorCode.HandshakeFailed, 'not the pinned relay'));
    await expect(a).rejects.toMatchObject({ code: ClientErrorCode.HandshakeFailed });
    expect(refused.rt.reported).toHaveLength(1);

    const once = setup(false);
    const b = once.sync.connect();
    once.sync.status({ state: 'disconnected', reason: 'closed' }); // our own stop: no verdict
    once.sync.status({ state: 'disconnected', reason: 'connect error: refused' });
    await expect(b).rejects.toMatchObject({ code: ClientErrorCode.NotConnected });
  });

  it('a push during the connection’s first fetch waits for it, and goes after what it fetched', async () => {
    const { log, mailbox, sync, up } = setup();
    const connecting = sync.connect();
    mailbox.push(item(1));
    up();
    sync.pushed([item(2)]); // stored after the page was read: held, then processed after it
    await connecting;
    expect(log).toEqual(['prekeys', 'fetch first', 'receive 1', 'receive 2', 'outbox']);
    sync.pushed([item(3)]); // caught up: processed as it comes
    await settle();
    expect(log.at(-1)).toBe('receive 3');
  });

  it('mail:sync fetches every page again', async () => {
    const { log, sync, up } = setup();
    const connecting = sync.connect();
    up();
    await connecting;
    log.length = 0;
    sync.mailSync();
    await settle();
    expect(log).toEqual(['fetch first']);
  });

  it('a gap fetches at once, then at most once per GAP_FETCH_INTERVAL_MS; not while offline', async () => {
    const { rt, log, sync, up, connection } = setup();
    sync.fetchForGap();
    expect(rt.time.pending).toBe(0); // offline
    const connecting = sync.connect();
    up();
    await connecting;
    log.length = 0;
    sync.fetchForGap();
    await rt.time.advance(0);
    expect(log).toEqual(['fetch first']);
    sync.fetchForGap();
    sync.fetchForGap();
    await rt.time.advance(GAP_FETCH_INTERVAL_MS - 1);
    expect(log).toEqual(['fetch first']);
    await rt.time.advance(1);
    expect(log).toEqual(['fetch first', 'fetch first']);
    connection.connected = false;
  });

  it('close stops every timer and rejects a pending connect()', async () => {
    const { rt, sync, up } = setup();
    const first = sync.connect();
    up();
    await first;
    sync.fetchForGap();
    const pending = sync.connect();
    sync.status({ state: 'disconnected', reason: 'transport close' });
    const again = sync.connect();
    rt.closed = true;
    sync.close(new ClientError(ClientErrorCode.StoreClosed, 'closed'));
    await expect(again).rejects.toMatchObject({ code: ClientErrorCode.StoreClosed });
    await expect(pending).resolves.toBeUndefined();
    expect(rt.time.pending).toBe(0);
  });
});
