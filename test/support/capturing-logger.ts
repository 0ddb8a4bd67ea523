/**
 * Test support: a Nest LoggerService that keeps every line the relay logs, at every level, with its
 * extra arguments (stack frames, context), as JSON strings a test can search for values that must
 * never appear in a log.
 *
 * @example
 * const logger = new CapturingLogger();
 * Logger.overrideLogger(logger);
 * expect(logger.lines.filter((l) => l.includes(secretHex))).toEqual([]);
 */
import type { LoggerService } from '@nestjs/common';

export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  #add(level: string, message: unknown, rest: unknown[]) {
    this.lines.push(JSON.stringify({ level, message: String(message), rest: rest.map(String) }));
  }
  log(message: unknown, ...rest: unknown[]) {
    this.#add('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]) {
    this.#add('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]) {
    this.#add('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]) {
    this.#add('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]) {
    this.#add('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]) {
    this.#add('fatal', message, rest);
  }
}
