import { corkWritesPerTurn } from './cork-writes.js';

/** A transport whose TCP socket logs cork, uncork and the packets sent, in order. */
function fakeTransport() {
  const log: string[] = [];
  const raw = { cork: () => void log.push('cork'), uncork: () => void log.push('uncork') };
  const transport = {
    socket: { _socket: raw },
    send: (packets: unknown) => void log.push(`send ${String(packets)}`),
  };
  return { transport, log };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('corkWritesPerTurn', () => {
  it('corks once per event-loop turn, at the first send, and uncorks after the turn, keeping the order', async () => {
    const { transport, log } = fakeTransport();
    corkWritesPerTurn(transport);
    corkWritesPerTurn(transport); // idempotent: still one wrapper
    transport.send('a');
    transport.send('b');
    await Promise.resolve().then(() => transport.send('c')); // a microtask of the same turn
    expect(log).toEqual(['cork', 'send a', 'send b', 'send c']);
    await nextTurn();
    expect(log).toEqual(['cork', 'send a', 'send b', 'send c', 'uncork']);
    transport.send('d');
    await nextTurn();
    expect(log.slice(5)).toEqual(['cork', 'send d', 'uncork']);
  });

  it('leaves transports without a TCP socket (long-polling) and non-transports alone', () => {
    const polling = { send: (packets: unknown) => packets };
    const send = polling.send;
    corkWritesPerTurn(polling);
    expect(polling.send).toBe(send);
    expect(() => corkWritesPerTurn(undefined)).not.toThrow();
    expect(() => corkWritesPerTurn({ socket: { _socket: {} } })).not.toThrow();
  });
});
