/**
 * Reliability support on the client side: MessengerClient instances ("parties") in the test
 * process, each recording what its application received, its errors, and a timeline of its
 * connection states and reconnect-delay draws; plus the delivery check (lost, duplicated, out of
 * order per conversation) and the backoff check.
 *
 * @example
 * const a = await openParty({ relayUrl, relayKeyHex });
 * await a.client.connect();
 * const report = deliveryReport(plan.expected, parties);  // { sent, received, lost, duplicated, outOfOrder }
 */
import {
  BACKOFF_DEFAULTS,
  type BackoffOptions,
  type ClientError,
  ClientErrorCode,
  type IncomingMessage,
  MemoryStore,
  MessengerClient,
  type MessengerClientOptions,
} from '@usm/client';
import { ProtocolError } from '@usm/protocol';

/** One entry of a party's connection timeline. `draw`: the reconnect backoff drew `r`. */
export type TimelineEntry =
  | {
      readonly at: number;
      readonly kind: 'connecting' | 'connected' | 'disconnected';
      readonly reason?: string;
    }
  | { readonly at: number; readonly kind: 'draw'; readonly r: number };

export interface Party {
  readonly name: string;
  readonly client: MessengerClient;
  readonly store: MemoryStore;
  /** What the application received, in order of arrival. */
  readonly messages: IncomingMessage[];
  /** Ids of the receipts ('delivered' events). */
  readonly delivered: string[];
  readonly errors: ClientError[];
  readonly timeline: TimelineEntry[];
  /** The reconnect backoff the client was configured with (all fields resolved). */
  readonly backoff: Required<Omit<BackoffOptions, 'random'>>;
}

export interface PartyOptions extends Partial<Omit<MessengerClientOptions, 'relayIdentityKey' | 'store'>> {
  readonly relayUrl: string;
  readonly relayKeyHex: string;
  readonly name?: string;
  readonly store?: MemoryStore;
}

/** Test-friendly defaults: quick reconnects and retries, few one-time prekeys (cheap start-up). */
export const PARTY_DEFAULTS = {
  backoff: { baseMs: 100, factor: 2, capMs: 2_000 },
  outbox: { retry: { baseMs: 100, capMs: 1_000 } },
  fetchIntervalMs: 5_000,
  requestTimeoutMs: 5_000,
  oneTimePrekeyBatch: 5,
} as const;

let parties = 0;

/** Opens a MessengerClient on a fresh MemoryStore (or `store`) that records everything it sees. */
export async function openParty(options: PartyOptions): Promise<Party> {
  const { relayKeyHex, name, store = new MemoryStore(), ...rest } = options;
  const backoff = { ...BACKOFF_DEFAULTS, ...PARTY_DEFAULTS.backoff, ...rest.backoff };
  const timeline: TimelineEntry[] = [];
  const random = backoff.random;
  const client = await MessengerClient.open({
    ...PARTY_DEFAULTS,
    ...rest,
    relayIdentityKey: relayKeyHex,
    store,
    backoff: {
      ...backoff,
      random: () => {
        const r = random();
        timeline.push({ at: Date.now(), kind: 'draw', r });
        return r;
      },
    },
  });
  const party: Party = {
    name: name ?? `party${++parties}`,
    client,
    store,
    messages: [],
    delivered: [],
    errors: [],
    timeline,
    backoff: { baseMs: backoff.baseMs, factor: backoff.factor, capMs: backoff.capMs },
  };
  client.on('message', (m) => void party.messages.push(m));
  client.on('delivered', ({ id }) => void party.delivered.push(id));
  client.on('error', (e) => void party.errors.push(e));
  client.on(
    'connection',
    ({ state, reason }) =>
      void timeline.push({ at: Date.now(), kind: state, ...(reason === undefined ? {} : { reason }) }),
  );
  return party;
}

/** Waits until `cond` holds, checking every 25 ms; throws after `ms` naming `what`. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

export const textOf = (m: IncomingMessage): string => (m.kind === 'text' ? m.text : '<bytes>');

/** The expected texts per conversation (`from->to`), in send order. */
export type Expected = Map<string, string[]>;

export function addExpected(expected: Expected, from: Party, to: Party, text: string): void {
  const key = `${from.client.address}->${to.client.address}`;
  const list = expected.get(key);
  if (list) list.push(text);
  else expected.set(key, [text]);
}

export interface DeliveryReport {
  conversations: number;
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  /** Conversations whose received texts are not exactly the sent ones in send order. */
  outOfOrder: number;
}

/** A delivery report's figures as a reliability case records them. */
export function deliveryFigures(report: DeliveryReport): Record<string, number> {
  return {
    sent: report.sent,
    received: report.received,
    lost: report.lost,
    duplicated: report.duplicated,
    'conversations out of order': report.outOfOrder,
  };
}

/** The report of `conversations` carrying `total` messages, each received once and in order. */
export function allDelivered(conversations: number, total: number): DeliveryReport {
  return { conversations, sent: total, received: total, lost: 0, duplicated: 0, outOfOrder: 0 };
}

/** Every one of `total` messages received once, in order. */
export function deliveredExactly(report: DeliveryReport, total: number): boolean {
  return report.lost + report.duplicated + report.outOfOrder === 0 && report.received === total;
}

/** Compares what every party's application received with `expected`. */
export function deliveryReport(expected: Expected, of: readonly Party[]): DeliveryReport {
  const got = new Map<string, string[]>();
  for (const p of of) {
    for (const m of p.messages) {
      const key = `${m.from}->${p.client.address}`;
      const list = got.get(key);
      if (list) list.push(textOf(m));
      else got.set(key, [textOf(m)]);
    }
  }
  let sent = 0;
  let lost = 0;
  let outOfOrder = 0;
  for (const [key, texts] of expected) {
    sent += texts.length;
    const received = new Set(got.get(key) ?? []);
    for (const t of texts) if (!received.has(t)) lost++;
    const list = got.get(key) ?? [];
    if (list.length !== texts.length || list.some((t, i) => t !== texts[i])) outOfOrder++;
  }
  const all = [...got.values()].flat();
  return {
    conversations: expected.size,
    sent,
    received: all.length,
    lost,
    duplicated: all.length - new Set(all).size,
    outOfOrder,
  };
}

/** Error codes seen by these parties, counted: `{ NOT_CONNECTED: 12, ... }`; RELAY_ERROR names its cause. */
export function errorCodes(of: readonly Party[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of of.flatMap((p) => p.errors)) {
    const cause = (e as { cause?: unknown }).cause;
    const code =
      e.code === ClientErrorCode.RelayError && ProtocolError.is(cause) ? `${e.code}/${cause.code}` : e.code;
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

/** Errors other than the ones a fault test causes on purpose (`allowed` codes, as errorCodes names them). */
export function unexpectedErrors(of: readonly Party[], allowed: readonly string[]): string[] {
  return of.flatMap((p) =>
    p.errors
      .filter((e) => {
        const cause = (e as { cause?: unknown }).cause;
        const code =
          e.code === ClientErrorCode.RelayError && ProtocolError.is(cause)
            ? `${e.code}/${cause.code}`
            : e.code;
        return !allowed.includes(code);
      })
      .map((e) => `${p.name}: ${e.code}: ${e.message}`),
  );
}

export interface BackoffReport {
  /** Reconnect delays drawn (each one reconnect attempt). */
  attempts: number;
  /** The highest attempt index n reached (0-based) since a successful connection. */
  maxAttempt: number;
  /** The largest drawn delay, and its ceiling min(cap, base * factor^n). */
  maxDelayMs: number;
  /** Observed gaps (draw to the next 'connecting') shorter than the drawn delay: must be 0. */
  early: number;
  /** Draws whose delay is outside [0, ceiling(n)): must be 0. */
  outOfBounds: number;
  /** Draws not followed by a reconnect attempt (only the last one, if the client was closed). */
  unanswered: number;
  /** Observed gaps minus the drawn delay (timer lateness), largest, in ms: a figure, not asserted. */
  maxLateMs: number;
}

/**
 * Checks a party's reconnect schedule against its configured backoff: the n-th draw after a
 * successful connection (n = 0, 1, ...) gives delay floor(r * min(cap, base * factor^n)), which
 * must lie in [0, that ceiling), and the next attempt ('connecting') must not come before it.
 * A client that reset its attempt counter too early, or retried before its delay, fails here.
 */
export function backoffReport(party: Party): BackoffReport {
  const { baseMs, factor, capMs } = party.backoff;
  const report: BackoffReport = {
    attempts: 0,
    maxAttempt: 0,
    maxDelayMs: 0,
    early: 0,
    outOfBounds: 0,
    unanswered: 0,
    maxLateMs: 0,
  };
  let n = 0;
  const t = party.timeline;
  for (let i = 0; i < t.length; i++) {
    const e = t[i]!;
    if (e.kind === 'connected') n = 0;
    if (e.kind !== 'draw') continue;
    const ceiling = Math.min(capMs, baseMs * factor ** n);
    const delay = Math.floor(e.r * ceiling);
    report.attempts++;
    report.maxAttempt = Math.max(report.maxAttempt, n);
    report.maxDelayMs = Math.max(report.maxDelayMs, delay);
    if (!(delay >= 0 && delay < ceiling)) report.outOfBounds++;
    const next = t.slice(i + 1).find((x) => x.kind === 'connecting');
    if (!next) report.unanswered++;
    else {
      // Node's timers fire at whole milliseconds and may round down by one.
      if (next.at - e.at < delay - 1) report.early++;
      report.maxLateMs = Math.max(report.maxLateMs, next.at - e.at - delay);
    }
    n++;
  }
  return report;
}

/** Closes every party (idempotent). */
export async function closeAll(of: readonly Party[]): Promise<void> {
  await Promise.all(of.map((p) => p.client.close()));
}

/** A line on stderr when USM_TRACE=1 (jest shows it at once, unlike console.log). */
export function trace(line: string): void {
  if (process.env['USM_TRACE'] === '1') process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
}

/** `promise`, or a rejection naming `what()` after `ms` (a hang guard, not a timing assertion). */
export async function within<T>(ms: number, promise: Promise<T>, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no outcome after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a party is doing, for a hang guard's message: state, last timeline entries, error codes. */
export function describeParty(p: Party): string {
  const tail = p.timeline.slice(-6).map((e) => (e.kind === 'draw' ? `draw(${e.r.toFixed(2)})` : e.kind));
  return `${p.name}: connected=${p.client.connected}, timeline ..${tail.join(',')}, errors ${JSON.stringify(errorCodes([p]))}`;
}

/** Connects every party; a hang guard names the ones that did not get there. */
export async function connectAll(of: readonly Party[], ms = 60_000): Promise<void> {
  const done = new Set<Party>();
  await within(
    ms,
    Promise.all(of.map((p) => p.client.connect().then(() => void done.add(p)))),
    () =>
      `connect: ${of
        .filter((p) => !done.has(p))
        .map(describeParty)
        .join('; ')}`,
  );
}

/** Waits for every promise (sends); a hang guard says how many are still pending. */
export async function settle(
  what: string,
  promises: readonly Promise<unknown>[],
  ms = 120_000,
): Promise<void> {
  let pending = promises.length;
  await within(
    ms,
    Promise.all(promises.map((p) => p.finally(() => pending--))),
    () => `${what}: ${pending} of ${promises.length} still pending`,
  );
}
