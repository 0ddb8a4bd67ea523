import { describe, expect, it } from '@jest/globals';
import { ProtocolError, ProtocolErrorCode } from '@usm/protocol';
import { ClientError, ClientErrorCode } from './errors.js';
import { clientClosed, reportUnlessOffline, systemScheduler, toClientError } from './runtime.js';

describe('runtime', () => {
  it('systemScheduler runs and cancels timers, with delays past 2^31 - 1 ms held, not fired at once', async () => {
    const fired: string[] = [];
    systemScheduler.setTimeout(() => fired.push('soon'), 1);
    const far = systemScheduler.setTimeout(() => fired.push('far'), 2 ** 40);
    const cancelled = systemScheduler.setTimeout(() => fired.push('cancelled'), 1);
    systemScheduler.clearTimeout(cancelled);
    systemScheduler.clearTimeout(undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    systemScheduler.clearTimeout(far);
    expect(fired).toEqual(['soon']);
  });

  it('toClientError keeps a ClientError and wraps anything else without its message', () => {
    const own = new ClientError(ClientErrorCode.Expired, 'x');
    expect(toClientError(own)).toBe(own);
    const wrapped = toClientError(new ProtocolError(ProtocolErrorCode.Malformed, 'bad'));
    expect([wrapped.code, wrapped.message]).toEqual([
      ClientErrorCode.RelayError,
      'unexpected failure: MALFORMED: bad',
    ]);
    expect(toClientError(new Error('secret')).message).toBe('unexpected failure: see cause');
  });

  it('reportUnlessOffline drops NOT_CONNECTED only', () => {
    const reported: unknown[] = [];
    const rt = { report: (err: unknown) => void reported.push(err) };
    reportUnlessOffline(rt, new ClientError(ClientErrorCode.NotConnected, 'offline'));
    reportUnlessOffline(rt, new ClientError(ClientErrorCode.RelayError, 'refused'));
    expect(reported.map((e) => (e as ClientError).code)).toEqual([ClientErrorCode.RelayError]);
    expect(clientClosed('send').code).toBe(ClientErrorCode.StoreClosed);
  });
});
