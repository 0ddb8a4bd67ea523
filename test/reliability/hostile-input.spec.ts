/**
 * Hostile input against the relay as operators run it: the built sample app in a CHILD PROCESS
 * (support/relay-process.ts) on a real PostgreSQL, with canary clients that keep exchanging mail
 * the whole time. An envelope one byte over the limit gets TOO_LARGE and its socket lives on; a
 * 10 MB frame closes only its own socket; at least 10,000 fuzzed raw socket.io / engine.io frames
 * leave the process up, with no error in its log and every canary still served, never
 * disconnected.
 *
 * Rate limits are off in this child (the canaries and the fuzzer all come from 127.0.0.1); the
 * flood case runs on the relay module in relay-attacks.spec.ts, wrong types and extra fields in
 * libs/relay/test/gateway-bad-input.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, ready } from '@usm/crypto';
import {
  MAX_ENVELOPE_BYTES,
  ProtocolErrorCode,
  encodeEnvelope,
  formatMessageId,
  generateMessageId,
  peekEnvelopeRoute,
  parseAddress,
  type AddressString,
} from '@usm/protocol';
import { usePostgres } from '../support/postgres.js';
import { type RelaySession, connectSocket, openSession } from '../support/relay-session.js';
import { SIZES } from './parameters.js';
import { recordCase } from './report.js';
import { type RelayProcess, ensureRelayBuilt, startRelayProcess } from './support/relay-process.js';
import { seeded } from './support/sessions.js';

await ready();

const envelopeTo = (recipient: AddressString, bytes = 48) =>
  encodeEnvelope({
    id: generateMessageId(),
    recipient: parseAddress(recipient),
    ciphertext: randomBytes(bytes),
  });

interface Canary {
  session: RelaySession;
  partner: number;
  sent: number;
  received: number;
  /** Ids of the envelopes sent to this canary, and of the mail pushed to it. */
  expected: Set<string>;
  got: string[];
  refused: number;
  disconnects: number;
}

/** Canaries in a ring: each round every canary sends one envelope to the next and waits for its own mail. */
class Canaries {
  readonly all: Canary[] = [];
  rounds = 0;
  #running: Promise<void> | undefined;
  #stop = false;

  static async open(url: string, relay: RelayProcess, n: number): Promise<Canaries> {
    const c = new Canaries();
    const sessions = await Promise.all(Array.from({ length: n }, () => openSession(url, relay.relayKey)));
    sessions.forEach((session, i) => {
      const canary: Canary = {
        session,
        partner: (i + 1) % n,
        sent: 0,
        received: 0,
        expected: new Set(),
        got: [],
        refused: 0,
        disconnects: 0,
      };
      (session.socket.on as (e: string, fn: (p: { mail: unknown[] }) => void) => void).call(
        session.socket,
        'mail',
        (p) => {
          for (const m of p.mail as { envelope: Uint8Array }[]) {
            canary.got.push(formatMessageId(peekEnvelopeRoute(new Uint8Array(m.envelope)).id));
          }
          canary.received = new Set(canary.got).size;
        },
      );
      session.socket.on('disconnect', () => void canary.disconnects++);
      c.all.push(canary);
    });
    return c;
  }

  /** One round; throws if a canary's mail does not arrive within the guard (not a timing assertion). */
  async round(): Promise<void> {
    await Promise.all(
      this.all.map(async (c) => {
        const partner = this.all[c.partner]!;
        const envelope = envelopeTo(partner.session.address);
        partner.expected.add(formatMessageId(peekEnvelopeRoute(envelope).id));
        const reply = await c.session.request('send', { envelopes: [envelope] });
        if (reply.status === 'ok' && reply.results[0]!.status === 'stored') c.sent++;
        else c.refused++;
      }),
    );
    this.rounds++;
    const start = Date.now();
    while (this.all.some((c) => c.received < this.rounds)) {
      if (Date.now() - start > 30_000)
        throw new Error(`canaries: round ${this.rounds} not delivered in 30 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Keeps running rounds until `stop()`. */
  start(): void {
    this.#stop = false;
    this.#running = (async () => {
      while (!this.#stop) await this.round();
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#running;
  }

  get disconnects(): number {
    return this.all.reduce((n, c) => n + c.disconnects, 0);
  }
  get refused(): number {
    return this.all.reduce((n, c) => n + c.refused, 0);
  }
  /** Envelopes sent to a canary that it never got. */
  get lost(): number {
    return this.all.reduce((n, c) => n + [...c.expected].filter((id) => !c.got.includes(id)).length, 0);
  }
  /** Pushes of mail a canary had already got (at-least-once on the wire; the client dedups). */
  get repeated(): number {
    return this.all.reduce((n, c) => n + c.got.length - new Set(c.got).size, 0);
  }
  /** Pushes of mail no one sent to that canary. */
  get foreign(): number {
    return this.all.reduce((n, c) => n + c.got.filter((id) => !c.expected.has(id)).length, 0);
  }
  close(): void {
    for (const c of this.all) c.session.close();
  }
}

/** The relay's log lines at error level or worse, and anything it printed on stderr. */
function relayErrors(relay: RelayProcess): string[] {
  const logged = relay
    .logs()
    .filter((l) => l.level === 'error' || l.level === 'fatal')
    .map((l) => `${l.level}: ${l.message}`);
  const stderr = relay.stderr().trim();
  return stderr ? [...logged, `stderr: ${stderr.slice(0, 500)}`] : logged;
}

function disconnected(session: { socket: RelaySession['socket'] }): Promise<string> {
  if (session.socket.disconnected) return Promise.resolve('already disconnected');
  return new Promise((resolve) => session.socket.once('disconnect', (reason) => resolve(reason)));
}

// ------------------------------------------------------------------------------------------
// The fuzzer: raw socket.io packets (written as engine.io messages) and raw engine.io packets.
// ------------------------------------------------------------------------------------------

const EVENT_NAMES: unknown[] = [
  'error',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'then',
  'send',
  'fetch',
  'ack',
  'prekeys:publish',
  'prekeys:claim',
  'prekeys:count',
  'handshake:init',
  'handshake:complete',
  'mail',
  'connect',
  'disconnect',
  'disconnecting',
  'newListener',
  '',
  ' ',
  'x'.repeat(300),
  42,
  -1,
  null,
  true,
  {},
  [],
  ['send'],
];

function deep(depth: number, array: boolean): string {
  return array ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function payload(random: () => number): string {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  return pick<() => string>([
    () => 'null',
    () => 'true',
    () => String(Math.floor(random() * 1e9) - 5e8),
    () => '1e308',
    () => '"str"',
    () => '[]',
    () => '{}',
    () => '{"__proto__":{"polluted":true}}',
    () => '{"constructor":{"prototype":{"polluted":true}}}',
    () => deep(1 + Math.floor(random() * 2000), random() < 0.5),
    () => '{"envelopes":"abc"}',
    () => '{"envelopes":[42]}',
    () => '{"envelopes":[{"_placeholder":true,"num":0}]}',
    () => `{"envelopes":[{"_placeholder":true,"num":${Math.floor(random() * 100)}}]}`,
    () => '{"envelopes":[{"_placeholder":"yes","num":"0"}]}',
    () => '{"ids":["*"]}',
    () => `{"ids":${JSON.stringify(Array.from({ length: 600 }, () => 'AAAAAAAAAAAAAAAAAAAAAA'))}}`,
    () => '{"ids":[{"$ne":null}]}',
    () => '{"cursor":{"$gt":""},"limit":-1}',
    () => '{"cursor":"0","limit":1e309}',
    () => '{"address":"*"}',
    () => '{"address":["a","b"]}',
    () => '{"message":"AAAA"}',
    () => '{"message":{"_placeholder":true,"num":0}}',
    () => `{"signedPrekey":{"id":-1,"record":"x"},"oneTimePrekeys":${deep(50, true)}}`,
    () => `"${'\\u0000'.repeat(10)}"`,
    () => '"\\ud800"',
  ])();
}

/** One fuzzed frame: what to write on the engine (string or binary), or a raw engine.io packet. */
function frame(random: () => number): { engine?: string; message?: (string | Uint8Array)[] } {
  const r = random();
  const ack = random() < 0.6 ? String(Math.floor(random() * 1e6)) : '';
  const name = JSON.stringify(EVENT_NAMES[Math.floor(random() * EVENT_NAMES.length)]);
  const args = Array.from({ length: Math.floor(random() * 3) }, () => payload(random)).join(',');
  const body = `[${name}${args ? ',' + args : ''}]`;
  if (r < 0.5) return { message: [`2${ack}${body}`] }; // EVENT
  if (r < 0.65) {
    // BINARY_EVENT: the attachment count may not match the placeholders.
    const declared = Math.floor(random() * 4);
    const sent = random() < 0.5 ? declared : Math.floor(random() * 4);
    const attachments = Array.from(
      { length: sent },
      () => new Uint8Array(randomBytes(Math.floor(random() * 64))),
    );
    return { message: [`5${declared}-${ack}${body}`, ...attachments] };
  }
  if (r < 0.7) return { message: [`3${ack || '1'}${body}`] }; // ACK for nothing
  if (r < 0.75) return { message: [`0${random() < 0.5 ? '/admin,' : ''}{"token":${payload(random)}}`] }; // CONNECT
  if (r < 0.78) return { message: [`4{"message":${payload(random)}}`] }; // CONNECT_ERROR from a client
  if (r < 0.8) return { message: [`2/nsp${Math.floor(random() * 3)},${body}`] }; // unknown namespace
  if (r < 0.88) {
    const garbage = [
      '2',
      '2[',
      '2{"a":1}',
      '2"str"',
      '2[null]',
      '2[1,2]',
      '5-[]',
      '51-',
      '9',
      '',
      '2' + ack + '[' + name,
      '\u0000',
      '2["send"' + ','.repeat(100) + ']',
    ];
    return { message: [garbage[Math.floor(random() * garbage.length)]!] };
  }
  // Raw engine.io packets: ping/pong/upgrade/noop/unknown types, a message of garbage.
  const raw = ['2', '3', '5', '6', '2probe', '3probe', '7', '9', 'x', '4' + deep(100, true), '1'];
  return { engine: raw[Math.floor(random() * raw.length)]! };
}

describe('hostile input against the relay process', () => {
  let relay: RelayProcess | undefined;
  let canaries: Canaries | undefined;
  afterAll(async () => {
    canaries?.close();
    await relay?.stop();
  });
  const pg = usePostgres();
  beforeAll(async () => {
    await ensureRelayBuilt();
    relay = await startRelayProcess(pg.url, { RATE_LIMITS: 'off', LOG_LEVEL: 'log' });
    canaries = await Canaries.open(relay.url, relay, SIZES.canaryClients);
    await canaries.round();
  }, 360_000);

  it('an envelope one byte over the limit gets TOO_LARGE and the socket lives on', async () => {
    const sender = await openSession(relay!.url, relay!.relayKey);
    try {
      const over = await sender.request('send', { envelopes: [new Uint8Array(MAX_ENVELOPE_BYTES + 1)] });
      const next = await sender.request('send', {
        envelopes: [envelopeTo(sender.address)],
      });
      const overCode = over.status === 'error' ? over.code : 'ok';
      recordCase({
        id: 'H1',
        title:
          'An envelope one byte over the limit: TOO_LARGE naming the field and the limit; the socket lives on',
        figures: {
          'envelope bytes': MAX_ENVELOPE_BYTES + 1,
          reply: overCode,
          'next send on that socket': next.status === 'ok' ? next.results[0]!.status : next.code,
          connected: String(sender.socket.connected),
        },
        outcome:
          overCode === ProtocolErrorCode.TooLarge && next.status === 'ok' && sender.socket.connected
            ? 'pass'
            : 'fail',
      });
      expect(over).toEqual({
        status: 'error',
        code: ProtocolErrorCode.TooLarge,
        message: `send.envelopes[0]: ${MAX_ENVELOPE_BYTES + 1} bytes, the limit is ${MAX_ENVELOPE_BYTES}`,
      });
      expect(next.status).toBe('ok');
      expect(sender.socket.connected).toBe(true);
    } finally {
      sender.close();
    }
  });

  it(`a ${SIZES.hugeFrameBytes / 1024 / 1024} MB frame closes only its own socket; ${SIZES.canaryClients} canaries keep exchanging and see no disconnect`, async () => {
    const c = canaries!;
    const roundsBefore = c.rounds;
    c.start();
    const attacker = await openSession(relay!.url, relay!.relayKey);
    const closed = disconnected(attacker);
    (attacker.socket.emit as (e: string, p: unknown) => void).call(attacker.socket, 'send', {
      envelopes: [new Uint8Array(SIZES.hugeFrameBytes)],
    });
    const reason = await closed;
    // The same from a socket that never authenticated.
    const anonymous = await connectSocket(relay!.url);
    const anonymousClosed = disconnected({ socket: anonymous });
    (anonymous.emit as (e: string, p: unknown) => void).call(anonymous, 'handshake:init', {
      message: new Uint8Array(SIZES.hugeFrameBytes),
    });
    const anonymousReason = await anonymousClosed;
    while (c.rounds < roundsBefore + 3) await new Promise((r) => setTimeout(r, 20));
    await c.stop();
    const errors = relayErrors(relay!);
    recordCase({
      id: 'H2',
      title: 'A 10 MB frame closes only that socket (authenticated or not); the canaries notice nothing',
      figures: {
        'frame bytes': SIZES.hugeFrameBytes,
        'attacker closed': reason,
        'unauthenticated closed': anonymousReason,
        canaries: c.all.length,
        'canary rounds meanwhile': c.rounds - roundsBefore,
        'canary disconnects': c.disconnects,
        'canary mail lost': c.lost,
        'relay errors logged': errors.length,
      },
      outcome:
        reason === 'transport close' &&
        c.disconnects === 0 &&
        c.lost === 0 &&
        c.refused === 0 &&
        relay!.alive() &&
        errors.length === 0
          ? 'pass'
          : 'fail',
    });
    expect(reason).toBe('transport close');
    expect(anonymousReason).toBe('transport close');
    expect({
      disconnects: c.disconnects,
      lost: c.lost,
      refused: c.refused,
      foreign: c.foreign,
      repeated: c.repeated,
      alive: relay!.alive(),
    }).toEqual({ disconnects: 0, lost: 0, refused: 0, foreign: 0, repeated: 0, alive: true });
    expect(errors).toEqual([]);
  });

  it(`${SIZES.fuzzFrames} fuzzed raw frames leave the relay process up, its log free of errors, and the canaries served`, async () => {
    const c = canaries!;
    const random = seeded(0xf022);
    const roundsBefore = c.rounds;
    c.start();
    let written = 0;
    let sockets = 0;
    let closedByRelay = 0;
    let fuzzer: RelaySession | undefined;
    try {
      while (written < SIZES.fuzzFrames) {
        if (!fuzzer || fuzzer.socket.disconnected) {
          if (fuzzer) closedByRelay++;
          fuzzer?.close();
          // Most fuzzers are authenticated (their events reach validation); some never are.
          if (sockets % 5 === 4) {
            const socket = await connectSocket(relay!.url);
            fuzzer = { socket, close: () => socket.close() } as unknown as RelaySession;
          } else {
            fuzzer = await openSession(relay!.url, relay!.relayKey);
          }
          sockets++;
        }
        const engine = fuzzer.socket.io.engine;
        for (let i = 0; i < 50 && written < SIZES.fuzzFrames && !fuzzer.socket.disconnected; i++, written++) {
          const f = frame(random);
          if (f.engine !== undefined) {
            const ws = (engine.transport as unknown as { ws?: { send(d: string): void; readyState: number } })
              .ws;
            if (ws && ws.readyState === 1) ws.send(f.engine);
          } else {
            for (const part of f.message!) engine.write(part as string);
          }
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      fuzzer?.close();
    }
    while (c.rounds < roundsBefore + 3) await new Promise((r) => setTimeout(r, 20));
    await c.stop();
    // A last round after the fuzzing: every canary still sends and receives.
    await c.round();
    const errors = relayErrors(relay!);
    recordCase({
      id: 'H3',
      title:
        'Fuzzed raw socket.io / engine.io frames (reserved names, __proto__, binary placeholders, deep nesting, wrong types): the relay process stays up, no error logged, canaries served',
      figures: {
        frames: written,
        'fuzzer sockets': sockets,
        'closed by the relay': closedByRelay,
        'relay alive': String(relay!.alive()),
        'relay errors logged': errors.length,
        'canary rounds': c.rounds - roundsBefore,
        'canary disconnects': c.disconnects,
        'canary mail lost': c.lost,
        'canary pushes repeated': c.repeated,
        'canary pushes not sent to it': c.foreign,
        'prototype polluted (test side)': String(({} as Record<string, unknown>)['polluted'] !== undefined),
      },
      outcome:
        relay!.alive() &&
        errors.length === 0 &&
        c.disconnects === 0 &&
        c.lost === 0 &&
        c.refused === 0 &&
        written >= SIZES.fuzzFrames
          ? 'pass'
          : 'fail',
    });
    expect(written).toBeGreaterThanOrEqual(SIZES.fuzzFrames);
    expect(relay!.alive()).toBe(true);
    expect(errors).toEqual([]);
    expect({
      disconnects: c.disconnects,
      lost: c.lost,
      refused: c.refused,
      foreign: c.foreign,
      repeated: c.repeated,
    }).toEqual({ disconnects: 0, lost: 0, refused: 0, foreign: 0, repeated: 0 });
  });
});
