/**
 * What every part of MessengerClient is given besides its own collaborators: the clock, a
 * scheduler for its timers, where its errors go, and whether the client is closed. Injected, so
 * each part runs on fake time in its unit spec (fake-time.test.ts) and the client wires real time.
 */
import { type Clock, ProtocolError } from '@usm/protocol';
import { ClientError, ClientErrorCode } from './errors.js';

/** A timer set by a Scheduler, for its `clearTimeout` only. */
export type TimerHandle = unknown;

/** setTimeout and clearTimeout behind an interface. */
export interface Scheduler {
  /** Runs `run` once after `ms` milliseconds. */
  setTimeout(run: () => void, ms: number): TimerHandle;
  /** Cancels a timer (undefined, or one that fired already, is ignored). */
  clearTimeout(timer: TimerHandle): void;
}

/** The longest delay setTimeout holds (2^31 - 1 ms); longer ones would fire at once. */
const MAX_TIMER_MS = 0x7fff_ffff;

/** The platform's timers; delays are clamped to 0 .. 2^31 - 1 ms. */
export const systemScheduler: Scheduler = {
  setTimeout: (run, ms) => setTimeout(run, Math.min(Math.max(0, ms), MAX_TIMER_MS)),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout> | undefined),
};

export interface Runtime {
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** Emits `error` (see `toClientError`); does nothing once the client is closed. */
  readonly report: (err: unknown) => void;
  /** True once `close()` was called: start nothing new, hand nothing more to the app. */
  readonly isClosed: () => boolean;
}

/** The error the `error` event carries: a ClientError as is, anything else wrapped (no secret). */
export function toClientError(err: unknown): ClientError {
  if (ClientError.is(err)) return err;
  return new ClientError(
    ClientErrorCode.RelayError,
    `unexpected failure: ${ProtocolError.is(err) ? `${err.code}: ${err.message}` : 'see cause'}`,
    { cause: err },
  );
}

/** Reports `err` unless it is NOT_CONNECTED: the next connection does that work again anyway. */
export function reportUnlessOffline(rt: Pick<Runtime, 'report'>, err: unknown): void {
  if (!ClientError.is(err, ClientErrorCode.NotConnected)) rt.report(err);
}

/** STORE_CLOSED for a call on a closed client. */
export function clientClosed(what: string): ClientError {
  return new ClientError(
    ClientErrorCode.StoreClosed,
    `${what}: the client is closed; queued messages stay in the store and go out when it is opened again`,
  );
}
