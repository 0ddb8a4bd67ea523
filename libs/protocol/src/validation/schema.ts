/**
 * Small validator combinators for socket payloads. A validator takes `unknown` and a path (the
 * field's name, e.g. `send.envelopes[3]`) and returns a fresh, typed value or throws a
 * ProtocolError whose message starts with that path:
 * - MALFORMED: wrong type, missing field, unexpected field, bad string form, below a minimum;
 * - TOO_LARGE: a count or size over its limit (checked before the elements are looked at).
 * Messages name the field and what was expected, never the value sent (a field name the sender
 * invented is quoted, truncated).
 *
 * Objects must be plain (prototype Object.prototype or null) and may not carry fields the schema
 * does not name, so a payload holds exactly what its type says.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';

export type Validator<T> = (value: unknown, path: string) => T;

/** The type a validator returns. */
export type Infer<V> = V extends Validator<infer T> ? T : never;

export function malformed(path: string, message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Malformed, `${path}: ${message}`);
}

export function tooLarge(path: string, message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.TooLarge, `${path}: ${message}`);
}

/** A type name for error messages; never the value itself. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`;
}

export interface BytesLimits {
  readonly min?: number;
  readonly max: number;
}

/**
 * A Uint8Array (Node's Buffer is one) or an ArrayBuffer (what socket.io-client delivers in
 * browsers), returned as a Uint8Array. Other views (Uint16Array, DataView) are refused.
 */
export function bytes({ min = 0, max }: BytesLimits): Validator<Uint8Array> {
  return (value, path) => {
    const out =
      value instanceof Uint8Array ? value : value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
    if (out === undefined) throw malformed(path, `expected bytes (Uint8Array), got ${describe(value)}`);
    if (out.length > max) throw tooLarge(path, `${out.length} bytes, the limit is ${max}`);
    if (out.length < min) throw malformed(path, `${out.length} bytes, the minimum is ${min}`);
    return out;
  };
}

export interface StringLimits {
  readonly min?: number;
  readonly max: number;
  /** Characters allowed, checked after the length (e.g. /^[A-Za-z0-9_-]*$/). */
  readonly pattern?: RegExp;
  /** What `pattern` means, for the error message. */
  readonly patternName?: string;
}

export function string({ min = 0, max, pattern, patternName }: StringLimits): Validator<string> {
  return (value, path) => {
    if (typeof value !== 'string') throw malformed(path, `expected a string, got ${describe(value)}`);
    if (value.length > max) throw tooLarge(path, `${value.length} characters, the limit is ${max}`);
    if (value.length < min) throw malformed(path, `${value.length} characters, the minimum is ${min}`);
    if (pattern && !pattern.test(value)) throw malformed(path, `expected ${patternName ?? pattern.source}`);
    return value;
  };
}

/** A string checked by a parser (which throws ProtocolError), returned as the branded type. */
export function parsed<T extends string>(
  max: number,
  parse: (value: string, path: string) => unknown,
): Validator<T> {
  const asString = string({ max });
  return (value, path) => {
    const text = asString(value, path);
    try {
      parse(text, path);
    } catch (err) {
      if (ProtocolError.is(err)) {
        throw new ProtocolError(
          err.code,
          err.message.startsWith(path) ? err.message : `${path}: ${err.message}`,
        );
      }
      throw err;
    }
    return text as T;
  };
}

/** An integer in [min, max] (both inclusive, within the safe integers). */
export function integer(min: number, max: number): Validator<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw malformed(path, `expected an integer, got ${describe(value)}`);
    }
    if (value > max) throw tooLarge(path, `the limit is ${max}`);
    if (value < min) throw malformed(path, `the minimum is ${min}`);
    return value;
  };
}

export const boolean: Validator<boolean> = (value, path) => {
  if (typeof value !== 'boolean') throw malformed(path, `expected a boolean, got ${describe(value)}`);
  return value;
};

export function literal<const T extends string>(...allowed: T[]): Validator<T> {
  return (value, path) => {
    if (typeof value !== 'string' || !(allowed as string[]).includes(value)) {
      throw malformed(path, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
    }
    return value as T;
  };
}

export function nullable<T>(inner: Validator<T>): Validator<T | null> {
  return (value, path) => (value === null ? null : inner(value, path));
}

export interface ArrayLimits {
  readonly min?: number;
  readonly max: number;
}

/** An array of at most `max` elements (checked before any element is). */
export function array<T>(item: Validator<T>, { min = 0, max }: ArrayLimits): Validator<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) throw malformed(path, `expected an array, got ${describe(value)}`);
    if (value.length > max) throw tooLarge(path, `${value.length} items, the limit is ${max}`);
    if (value.length < min) throw malformed(path, `${value.length} items, the minimum is ${min}`);
    const out: T[] = [];
    for (let i = 0; i < value.length; i++) out.push(item(value[i], `${path}[${i}]`));
    return out;
  };
}

type Shape = Record<string, Validator<unknown>>;
type Required<S extends Shape> = { -readonly [K in keyof S]: Infer<S[K]> };
type Optional<S extends Shape> = { -readonly [K in keyof S]?: Infer<S[K]> };

/**
 * A plain object with exactly the `required` fields and any of the `optional` ones. An optional
 * field set to undefined counts as absent (JSON cannot carry undefined anyway).
 */
export function object<R extends Shape, O extends Shape = Record<never, never>>(
  required: R,
  optional?: O,
): Validator<Required<R> & Optional<O>> {
  const known = new Set([...Object.keys(required), ...Object.keys(optional ?? {})]);
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
      throw malformed(path, `expected an object, got ${describe(value)}`);
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) throw malformed(path, 'expected a plain object');
    for (const key of Object.keys(value)) {
      if (!known.has(key)) throw malformed(path, `unexpected field ${quoteField(key)}`);
    }
    const input = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, validate] of Object.entries(required)) {
      if (!Object.hasOwn(input, key) || input[key] === undefined)
        throw malformed(`${path}.${key}`, 'required');
      out[key] = validate(input[key], `${path}.${key}`);
    }
    for (const [key, validate] of Object.entries(optional ?? {})) {
      if (Object.hasOwn(input, key) && input[key] !== undefined)
        out[key] = validate(input[key], `${path}.${key}`);
    }
    return out as Required<R> & Optional<O>;
  };
}

/** Runs `check` on a validated value (cross-field rules: totals, uniqueness). */
export function refine<T>(inner: Validator<T>, check: (value: T, path: string) => void): Validator<T> {
  return (value, path) => {
    const out = inner(value, path);
    check(out, path);
    return out;
  };
}

/** Picks the validator by a string `status` field (replies and send outcomes). */
export function byStatus<M extends Record<string, Validator<unknown>>>(
  variants: M,
): Validator<Infer<M[keyof M]>> {
  const names = Object.keys(variants);
  return (value, path) => {
    const status =
      typeof value === 'object' && value !== null && Object.hasOwn(value, 'status')
        ? (value as { status: unknown }).status
        : undefined;
    if (typeof status !== 'string' || !Object.hasOwn(variants, status)) {
      throw malformed(`${path}.status`, `expected one of ${names.map((n) => `'${n}'`).join(', ')}`);
    }
    return variants[status]!(value, path) as Infer<M[keyof M]>;
  };
}

/** A field name the sender chose, safe to print: quoted, at most 32 characters. */
function quoteField(key: string): string {
  return JSON.stringify(key.length > 32 ? `${key.slice(0, 32)}...` : key);
}
