import type { Logger } from '@nestjs/common';
import { ProtocolErrorCode } from '@usm/protocol';
import { RelayDatabaseError } from './database/relay-database.js';
import { UNAVAILABLE_RETRY_AFTER_MS, toErrorReply } from './relay-exception.filter.js';
import { RelayError, RelayErrorCode } from './relay.errors.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';

/** A value a client sent, which no log line may quote. */
const INPUT = '9999999999999999999';

/** A logger that keeps every call, at every level, with all its arguments. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep =
    (level: string) =>
    (...args: unknown[]) =>
      void lines.push(JSON.stringify({ level, args: args.map(String) }));
  const logger = {
    log: keep('log'),
    error: keep('error'),
    warn: keep('warn'),
    debug: keep('debug'),
    verbose: keep('verbose'),
    fatal: keep('fatal'),
  } as unknown as Logger;
  return { logger, lines };
}

describe('toErrorReply', () => {
  it('answers an unknown error with INTERNAL and logs its class and stack frames, never its message, even over several lines', () => {
    class ParserBug extends Error {}
    const { logger, lines } = capture();
    const err = new ParserBug(`bad token "${INPUT}"\nwhile reading ${INPUT}`);
    expect(toErrorReply(err, 'fetch', logger)).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Internal,
      message: M.internal(),
    });
    expect(lines).toHaveLength(1);
    const { level, args } = JSON.parse(lines[0]!) as { level: string; args: string[] };
    expect(level).toBe('error');
    expect(args[0]).toBe(M.unexpectedError('fetch', 'ParserBug'));
    expect(args[1]!.split('\n').every((line) => /^\s+at /.test(line))).toBe(true);
    expect(lines.join('\n')).not.toContain(INPUT);
    // A thrown non-Error is named by its type only.
    expect(toErrorReply(INPUT, 'fetch', logger).code).toBe(ProtocolErrorCode.Internal);
    expect(lines[1]).toBe(
      JSON.stringify({ level: 'error', args: [M.unexpectedError('fetch', 'string'), 'undefined'] }),
    );
    expect(lines.join('\n')).not.toContain(INPUT);
  });

  it('logs a database failure by SQLSTATE and schema object names, and answers UNAVAILABLE with its retry delay', () => {
    const { logger, lines } = capture();
    const err = RelayDatabaseError.from({
      code: '23505',
      message: `duplicate key value violates unique constraint "usm_mail_pkey"`,
      detail: `Key (recipient, message_id)=(${INPUT}, \\x00) already exists.`,
      table: 'usm_mail',
      constraint: 'usm_mail_pkey',
      schema: 'public',
    });
    expect(toErrorReply(err, 'send', logger)).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Unavailable,
      message: M.database('23505'),
      retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
    });
    expect(lines).toEqual([
      JSON.stringify({
        level: 'error',
        args: [M.databaseFailed('send', '23505', 'table usm_mail, constraint usm_mail_pkey')],
      }),
    ]);
    expect(lines.join('\n')).not.toContain(INPUT);
    // A code that is not an SQLSTATE or a driver code is not repeated either.
    expect(RelayDatabaseError.from({ code: `x ${INPUT}`, message: INPUT })).toMatchObject({
      sqlState: 'UNKNOWN',
      objects: '',
    });
  });

  it('answers what the client caused (INVALID_INPUT, RATE_LIMITED) without logging anything', () => {
    const { logger, lines } = capture();
    expect(
      toErrorReply(new RelayError(RelayErrorCode.InvalidInput, M.badCursor('9')), 'fetch', logger),
    ).toEqual({
      status: 'error',
      code: ProtocolErrorCode.Malformed,
      message: M.badCursor('9'),
    });
    expect(
      toErrorReply(
        new RelayError(RelayErrorCode.RateLimited, M.rateLimited('fetch', 500), 500),
        'fetch',
        logger,
      ),
    ).toEqual({
      status: 'error',
      code: ProtocolErrorCode.RateLimited,
      message: M.rateLimited('fetch', 500),
      retryAfterMs: 500,
    });
    expect(lines).toEqual([]);
  });
});
