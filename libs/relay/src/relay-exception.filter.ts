/**
 * The one way errors leave the relay's socket: `{ status: 'error', code, message, retryAfterMs?,
 * serverTimeMs? }` (ErrorReply of @usm/protocol), whatever failed: payload validation and envelope
 * decoding (ProtocolError), the handshake (ProtocolError; CLOCK_SKEW with the relay's time), the
 * store, directory and rate limits (RelayError), or a bug. No log line quotes what a client sent:
 * an error the relay does not know becomes INTERNAL with a generic message, and a server-side log
 * line that holds the event name, the error's class and its stack frames, never its message; a
 * database failure is logged with its SQLSTATE and the schema objects it names, never the
 * server's message (`value "..." is out of range`), a payload byte, a key or a nonce.
 */
import { type ArgumentsHost, Catch, Logger, type WsExceptionFilter } from '@nestjs/common';
import {
  type ErrorReply,
  HandshakeClockSkewError,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_RETRY_AFTER_MS,
  ProtocolError,
  ProtocolErrorCode,
} from '@usm/protocol';
import { RelayDatabaseError } from './database/relay-database.js';
import { RelayError, RelayErrorCode } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';

/** How long a client should wait before retrying after UNAVAILABLE (the database failed). */
export const UNAVAILABLE_RETRY_AFTER_MS = 1_000;

/** The wire code of each RelayError code. */
const RELAY_TO_WIRE: Readonly<Record<RelayErrorCode, ProtocolErrorCode>> = {
  [RelayErrorCode.InvalidOptions]: ProtocolErrorCode.Internal,
  [RelayErrorCode.InvalidInput]: ProtocolErrorCode.Malformed,
  [RelayErrorCode.QuotaExceeded]: ProtocolErrorCode.QuotaExceeded,
  [RelayErrorCode.RateLimited]: ProtocolErrorCode.RateLimited,
  [RelayErrorCode.BadPrekey]: ProtocolErrorCode.BadPrekey,
  [RelayErrorCode.Database]: ProtocolErrorCode.Unavailable,
};

function clip(message: string): string {
  return message.length <= MAX_ERROR_MESSAGE_CHARS
    ? message
    : `${message.slice(0, MAX_ERROR_MESSAGE_CHARS - 3)}...`;
}

function retryAfter(ms: number): number {
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(1, Math.ceil(ms)));
}

/**
 * The error reply for `err`, and what to log about it (only for failures on the relay's side).
 * Exported for the gateway's packet middleware, which refuses packets before any handler runs.
 */
export function toErrorReply(err: unknown, event: string, logger: Logger): ErrorReply {
  if (err instanceof HandshakeClockSkewError) {
    return { status: 'error', code: err.code, message: clip(err.message), serverTimeMs: err.serverTimeMs };
  }
  if (err instanceof ProtocolError) {
    return { status: 'error', code: err.code, message: clip(err.message) };
  }
  if (err instanceof RelayError) {
    const code = RELAY_TO_WIRE[err.code] ?? ProtocolErrorCode.Internal;
    if (err instanceof RelayDatabaseError) {
      // SQLSTATE and schema object names only, never values (relay-database.ts).
      logger.error(M.databaseFailed(event, err.sqlState, err.objects));
      return {
        status: 'error',
        code,
        message: clip(err.message),
        retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
      };
    }
    if (code === ProtocolErrorCode.Internal) return internal(err, event, logger);
    return err.retryAfterMs === undefined
      ? { status: 'error', code, message: clip(err.message) }
      : { status: 'error', code, message: clip(err.message), retryAfterMs: retryAfter(err.retryAfterMs) };
  }
  return internal(err, event, logger);
}

function internal(err: unknown, event: string, logger: Logger): ErrorReply {
  logger.error(M.unexpectedError(event, errorClass(err)), stackFrames(err));
  return { status: 'error', code: ProtocolErrorCode.Internal, message: M.internal() };
}

/** What an unknown error may log of itself: its class (or its type, when not an Error). */
export function errorClass(err: unknown): string {
  return err instanceof Error ? err.constructor.name || err.name : typeof err;
}

/** An error's stack frames without its message, which might quote input (over several lines). */
export function stackFrames(err: unknown): string | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  return err.stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
}

/**
 * The gateway's exception filter: answers the event's acknowledgement with the error reply.
 * Events without an acknowledgement are refused earlier, by the gateway's packet middleware.
 */
@Catch()
export class RelayExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger('MessengerRelay');

  catch(exception: unknown, host: ArgumentsHost): void {
    // ws handler arguments: (socket, payload, ack, pattern).
    const args = host.getArgs<unknown[]>();
    const pattern = args[args.length - 1];
    const event = typeof pattern === 'string' ? pattern : 'unknown';
    const ack = args.slice(1).find((a): a is (reply: ErrorReply) => void => typeof a === 'function');
    const reply = toErrorReply(exception, event, this.logger);
    ack?.(reply);
  }
}
