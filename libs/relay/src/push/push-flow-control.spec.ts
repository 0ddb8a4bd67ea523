import { EventEmitter } from 'node:events';
import type { MailSyncPush } from '@usm/protocol';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { PushFlowControl, pushBacklog } from './push-flow-control.js';
import { RELAY_DEFAULTS, type ResolvedRelayOptions } from '../relay.options.js';

/** An engine.io transport as the relay sees it: a name, ws's bufferedAmount, 'drain' events. */
class FakeTransport extends EventEmitter {
  constructor(
    readonly name: 'websocket' | 'polling',
    readonly socket?: { bufferedAmount: number },
  ) {
    super();
  }
}

/** An engine.io socket: its write buffer, its transport, 'upgrade' events. */
class FakeConnection extends EventEmitter {
  writeBuffer: { type: string; data?: unknown }[] = [];
  constructor(public transport: FakeTransport) {
    super();
  }
}

/** A socket.io socket: `emit('mail:sync')` reaches the test's listener, 'disconnect' is emitted by it. */
class FakeSocket extends EventEmitter {
  readonly syncs: MailSyncPush[] = [];
  constructor(readonly conn: FakeConnection) {
    super();
    this.on('mail:sync', (payload: MailSyncPush) => this.syncs.push(payload));
  }
}

const CAP_BYTES = 1_000;
const CAP_ITEMS = 10;

function setup(transport = new FakeTransport('websocket', { bufferedAmount: 0 })) {
  const options = {
    mail: { ...RELAY_DEFAULTS.mail, pushBacklogBytes: CAP_BYTES, pushBacklogItems: CAP_ITEMS },
    metrics: { prefix: 'test_', defaultMetrics: false },
  } satisfies Pick<ResolvedRelayOptions, 'mail' | 'metrics'>;
  const metrics = new RelayMetrics(options);
  const flow = new PushFlowControl(options, metrics);
  const conn = new FakeConnection(transport);
  const socket = new FakeSocket(conn);
  const counter = async (name: string, label: string): Promise<number> => {
    const metric = await metrics.registry.getSingleMetric(name)?.get();
    return metric?.values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
  };
  return {
    flow,
    conn,
    socket,
    withheld: () => counter('test_messages_total', 'withheld'),
    syncs: () => counter('test_mail_sync_total', 'backlog'),
  };
}

const packet = (bytes: number) => ({ type: 'message', data: Buffer.alloc(bytes) });

describe('pushBacklog', () => {
  it("adds engine.io's write buffer (strings as UTF-8, Buffers, ArrayBuffers, views) and ws's bufferedAmount", () => {
    const { conn, socket } = setup(new FakeTransport('websocket', { bufferedAmount: 500 }));
    conn.writeBuffer.push(
      { type: 'message', data: '451-["mail"]' },
      { type: 'message', data: 'é' },
      packet(100),
      { type: 'message', data: new ArrayBuffer(30) },
      { type: 'message', data: new Uint8Array(new ArrayBuffer(64), 8, 20) },
      { type: 'ping' },
    );
    expect(pushBacklog(socket)).toEqual({ bytes: 12 + 2 + 100 + 30 + 20 + 500, items: 6 });
  });

  it('counts only the write buffer on long-polling, and nothing for a socket without a connection', () => {
    const { conn, socket } = setup(new FakeTransport('polling'));
    conn.writeBuffer.push(packet(40));
    expect(pushBacklog(socket)).toEqual({ bytes: 40, items: 1 });
    expect(pushBacklog({ ...socket, conn: undefined } as unknown as FakeSocket)).toEqual({
      bytes: 0,
      items: 0,
    });
  });
});

describe('PushFlowControl', () => {
  it('admits pushes under both caps; at the byte cap the socket is behind and every push is withheld and counted', async () => {
    const { flow, conn, socket, withheld } = setup();
    conn.writeBuffer.push(packet(CAP_BYTES - 1));
    expect(flow.admit(socket, 3)).toBe(true);
    expect(flow.isBehind(socket)).toBe(false);
    conn.writeBuffer.push(packet(1));
    expect(flow.admit(socket, 3)).toBe(false);
    expect(flow.isBehind(socket)).toBe(true);
    // Behind stays behind, whatever the backlog, until a drain.
    conn.writeBuffer = [];
    expect(flow.admit(socket, 2)).toBe(false);
    expect(await withheld()).toBe(5);
    expect(socket.syncs).toEqual([]);
  });

  it("counts ws's bufferedAmount towards the byte cap, and packets towards the item cap", () => {
    const ws = { bufferedAmount: CAP_BYTES };
    const a = setup(new FakeTransport('websocket', ws));
    expect(a.flow.admit(a.socket, 1)).toBe(false);

    const b = setup();
    b.conn.writeBuffer = Array.from({ length: CAP_ITEMS - 1 }, () => packet(1));
    expect(b.flow.admit(b.socket, 1)).toBe(true);
    b.conn.writeBuffer.push(packet(1));
    expect(b.flow.admit(b.socket, 1)).toBe(false);
  });

  it('a drain at half the caps or less sends one mail:sync and resumes pushes; a drain above half waits', async () => {
    const ws = { bufferedAmount: 0 };
    const { flow, conn, socket, syncs } = setup(new FakeTransport('websocket', ws));
    conn.writeBuffer = Array.from({ length: CAP_ITEMS }, () => packet(1));
    expect(flow.admit(socket, 1)).toBe(false);
    expect(conn.transport.listenerCount('drain')).toBe(1);

    // Still more than half the items, then more than half the bytes: no sync yet.
    conn.writeBuffer = Array.from({ length: CAP_ITEMS / 2 + 1 }, () => packet(1));
    conn.transport.emit('drain');
    conn.writeBuffer = [];
    ws.bufferedAmount = CAP_BYTES / 2 + 1;
    conn.transport.emit('drain');
    expect(socket.syncs).toEqual([]);
    expect(flow.isBehind(socket)).toBe(true);

    ws.bufferedAmount = CAP_BYTES / 2;
    conn.writeBuffer = Array.from({ length: CAP_ITEMS / 2 }, () => packet(0));
    conn.transport.emit('drain');
    expect(socket.syncs).toEqual([{ reason: 'backlog' }]);
    expect(await syncs()).toBe(1);
    expect(flow.isBehind(socket)).toBe(false);
    expect(flow.admit(socket, 1)).toBe(true);

    // The watch is gone: later drains send nothing.
    expect(conn.transport.listenerCount('drain')).toBe(0);
    expect(conn.listenerCount('upgrade')).toBe(0);
    expect(socket.listenerCount('disconnect')).toBe(0);
    conn.transport.emit('drain');
    expect(socket.syncs).toHaveLength(1);
  });

  it("after an upgrade it listens to the new transport's drain, and checks at once", () => {
    const { flow, conn, socket } = setup(new FakeTransport('polling'));
    const polling = conn.transport;
    conn.writeBuffer = [packet(CAP_BYTES)];
    expect(flow.admit(socket, 1)).toBe(false);

    // Upgraded with the backlog still there: the old transport is let go, the new one watched.
    const ws = { bufferedAmount: CAP_BYTES };
    const websocket = new FakeTransport('websocket', ws);
    conn.transport = websocket;
    conn.writeBuffer = [];
    conn.emit('upgrade', websocket);
    expect(polling.listenerCount('drain')).toBe(0);
    expect(websocket.listenerCount('drain')).toBe(1);
    expect(socket.syncs).toEqual([]);

    ws.bufferedAmount = 0;
    websocket.emit('drain');
    expect(socket.syncs).toEqual([{ reason: 'backlog' }]);
    expect(flow.isBehind(socket)).toBe(false);

    // An upgrade that finds the backlog drained syncs at once.
    conn.writeBuffer = [packet(CAP_BYTES)];
    expect(flow.admit(socket, 1)).toBe(false);
    conn.writeBuffer = [];
    const next = new FakeTransport('websocket', { bufferedAmount: 0 });
    conn.transport = next;
    conn.emit('upgrade', next);
    expect(socket.syncs).toHaveLength(2);
    expect(next.listenerCount('drain')).toBe(0);
  });

  it('a disconnect drops the watch of a socket that was behind: no listener left, no sync', () => {
    const { flow, conn, socket } = setup();
    conn.writeBuffer = [packet(CAP_BYTES)];
    expect(flow.admit(socket, 1)).toBe(false);
    socket.emit('disconnect', 'transport close');
    expect(flow.isBehind(socket)).toBe(false);
    expect(conn.transport.listenerCount('drain')).toBe(0);
    expect(conn.listenerCount('upgrade')).toBe(0);
    expect(socket.listenerCount('disconnect')).toBe(0);
    conn.writeBuffer = [];
    conn.transport.emit('drain');
    expect(socket.syncs).toEqual([]);
  });

  it('keeps nothing for a socket that is not behind', () => {
    const { flow, conn, socket } = setup();
    expect(flow.admit(socket, 1)).toBe(true);
    expect(conn.transport.listenerCount('drain')).toBe(0);
    expect(conn.listenerCount('upgrade')).toBe(0);
    expect(socket.listenerCount('disconnect')).toBe(0);
  });
});
