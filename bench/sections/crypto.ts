/**
 * Crypto: our Double Ratchet (libs/crypto) against libsignal-client doing the same work in the
 * same process, interleaved repetition by repetition, plus the primitives' own ceilings.
 *
 * A "message" is one encrypt plus one decrypt, wire bytes in between.
 *  - One-way burst: 1,000 messages inside one established chain (Alice encrypts them all, Bob
 *    decrypts them in order). Both sessions first exchange three messages (A->B, B->A, A->B),
 *    so the burst neither starts a chain nor carries a libsignal PreKey message.
 *  - Ping-pong: directions alternate and each message is decrypted before the reply, so every
 *    message turns the DH ratchet: a new key pair and two X25519 per message, in both.
 */
import {
  createCipheriv,
  createDecipheriv,
  diffieHellman,
  generateKeyPairSync,
  randomBytes as nodeRandomBytes,
} from 'node:crypto';
import libsodium from 'libsodium-wrappers-sumo';
import { SessionRecord, processPreKeyBundle } from '@signalapp/libsignal-client';
import {
  DoubleRatchet,
  createSodiumX25519,
  randomBytes,
  ready,
  x25519Backend,
  type X25519Backend,
} from '@usm/crypto';
import { ratchetPair } from '../../libs/crypto/test/ratchet-kit.js';
import { elapsedMs, median, rateAsync, rateSync, settle } from '../lib/measure.js';
import { formatNumber } from '../lib/report.js';
import { defineSection, type SectionContext } from '../lib/section.js';
import { libsignalParties, libsignalSession, type LibsignalParty } from '../peers/libsignal.js';

const BURST = 1_000;
const SIZES = { '100b': 100, '1k': 1024 } as const;
type Size = keyof typeof SIZES;

/** One end of a session, as the workloads see it. */
interface Endpoint<W> {
  encrypt(plaintext: Uint8Array<ArrayBuffer>): Promise<W>;
  decrypt(wire: W): Promise<Uint8Array>;
}
/** [alice, bob] after the three-message warm-up; Alice sent last. */
type Pair<W> = readonly [Endpoint<W>, Endpoint<W>];

async function warmUp<W>([a, b]: Pair<W>): Promise<void> {
  const hello = new Uint8Array(16);
  await b.decrypt(await a.encrypt(hello));
  await a.decrypt(await b.encrypt(hello));
  await b.decrypt(await a.encrypt(hello));
}

async function oursPair(): Promise<readonly [DoubleRatchet, DoubleRatchet]> {
  const { alice, bob } = ratchetPair();
  await warmUp<Uint8Array>([alice, bob]);
  return [alice, bob];
}

const endpoint = (self: LibsignalParty, peer: LibsignalParty): Endpoint<Uint8Array<ArrayBuffer>> => ({
  encrypt: (plaintext) => self.encrypt(peer, plaintext),
  decrypt: (wire) => self.decrypt(peer, wire),
});

async function libsignalPair(): Promise<Pair<Uint8Array<ArrayBuffer>>> {
  const { alice, bob } = await libsignalSession();
  const pair = [endpoint(alice, bob), endpoint(bob, alice)] as const;
  // The session setup already carried A->B; this makes it A->B, B->A, A->B like ours.
  await pair[1].decrypt(await pair[0].encrypt(new Uint8Array(16)));
  await pair[0].decrypt(await pair[1].encrypt(new Uint8Array(16)));
  return pair;
}

function check(out: Uint8Array, plaintext: Uint8Array): void {
  if (out.length !== plaintext.length) throw new Error('bench: a message did not round-trip');
}

/** Messages per second of a one-way burst of `count` inside one chain. */
async function burst<W>([a, b]: Pair<W>, plaintext: Uint8Array<ArrayBuffer>, count: number): Promise<number> {
  const wires: W[] = [];
  const ms = await elapsedMs(async () => {
    for (let i = 0; i < count; i++) wires.push(await a.encrypt(plaintext));
    for (const wire of wires) check(await b.decrypt(wire), plaintext);
  });
  return (count * 1000) / ms;
}

/** Messages per second when each message is answered: a DH ratchet turn per message. */
async function pingPong<W>(
  pair: Pair<W>,
  plaintext: Uint8Array<ArrayBuffer>,
  count: number,
): Promise<number> {
  const ms = await elapsedMs(async () => {
    for (let i = 0; i < count; i++) {
      // Alice sent last in the warm-up, so Bob opens: every message is a new DH turn.
      const [from, to] = i % 2 === 0 ? [pair[1], pair[0]] : [pair[0], pair[1]];
      check(await to.decrypt(await from.encrypt(plaintext)), plaintext);
    }
  });
  return (count * 1000) / ms;
}

/** libsignal session setup, one sample: PQXDH bundle processing, first message out and in. */
async function libsignalSetupMs(): Promise<number> {
  const { alice, bob } = libsignalParties();
  const bundle = bob.publishBundle(); // Bob's key generation is not part of Alice's setup
  const first = new Uint8Array(100);
  return elapsedMs(async () => {
    await processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identities);
    check(await bob.decrypt(alice, await alice.encrypt(bob, first)), first);
  });
}

/** One task of a repetition: measures once and returns the sample for `key`. */
interface Task {
  readonly key: string;
  readonly label: string;
  run(): Promise<number>;
}

function tasks(quick: boolean): Task[] {
  const pingPongCount = quick ? 300 : 1_000;
  const rateMs = quick ? 100 : 400;
  const setupSamples = quick ? 5 : 15;
  const plaintexts = {
    '100b': new Uint8Array(nodeRandomBytes(SIZES['100b'])),
    '1k': new Uint8Array(nodeRandomBytes(SIZES['1k'])),
  } satisfies Record<Size, Uint8Array<ArrayBuffer>>;
  const list: Task[] = [];
  for (const size of Object.keys(SIZES) as Size[]) {
    const pt = plaintexts[size];
    list.push(
      {
        key: `ours_msgs_per_s_${size}`,
        label: `ours burst ${size}`,
        run: async () => burst(await oursPair(), pt, BURST),
      },
      {
        key: `libsignal_msgs_per_s_${size}`,
        label: `libsignal burst ${size}`,
        run: async () => burst(await libsignalPair(), pt, BURST),
      },
      {
        key: `ours_pingpong_msgs_per_s_${size}`,
        label: `ours ping-pong ${size}`,
        run: async () => pingPong(await oursPair(), pt, pingPongCount),
      },
      {
        key: `libsignal_pingpong_msgs_per_s_${size}`,
        label: `libsignal ping-pong ${size}`,
        run: async () => pingPong(await libsignalPair(), pt, pingPongCount),
      },
    );
  }
  list.push(
    {
      key: 'pickle_unpickle_per_s',
      label: 'ours pickle+unpickle',
      run: async () => {
        const [alice] = await oursPair();
        return rateAsync(async () => DoubleRatchet.fromPickle(await alice.pickle()), rateMs);
      },
    },
    {
      key: 'pickle_unpickle_encrypted_per_s',
      label: 'ours pickle+unpickle, encrypted',
      run: async () => {
        const [alice] = await oursPair();
        const storageKey = new Uint8Array(nodeRandomBytes(32));
        return rateAsync(
          async () => DoubleRatchet.fromPickle(await alice.pickle(storageKey), storageKey),
          rateMs,
        );
      },
    },
    {
      key: 'libsignal_session_serialize_per_s',
      label: 'libsignal session serialize+deserialize',
      run: async () => {
        const { alice, bob } = await libsignalSession();
        const record = alice.sessions.get(bob.address);
        if (!record) throw new Error('bench: libsignal session missing');
        return rateSync(() => SessionRecord.deserialize(record.serialize()), rateMs);
      },
    },
    {
      key: 'libsignal_session_setup_ms',
      label: 'libsignal session setup',
      run: async () => {
        const samples: number[] = [];
        for (let i = 0; i < setupSamples; i++) samples.push(await libsignalSetupMs());
        return median(samples);
      },
    },
    ...anchors(rateMs),
  );
  return list;
}

/** The primitives' ceilings on this machine: what a message costs at the very least. */
function anchors(rateMs: number): Task[] {
  const key = new Uint8Array(nodeRandomBytes(32));
  const iv = new Uint8Array(nodeRandomBytes(12));
  const aad = new Uint8Array(64);
  const kib = new Uint8Array(nodeRandomBytes(1024));
  return [
    {
      key: 'anchor_aes_gcm_1k_per_s',
      label: 'node:crypto AES-256-GCM 1 KiB',
      run: async () =>
        // Encrypt then decrypt 1 KiB, a cipher object each, as the library does. The fixed IV
        // is harmless here: nothing secret is encrypted and nothing leaves the process.
        rateSync(() => {
          const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
          c.setAAD(aad);
          const ct = Buffer.concat([c.update(kib), c.final()]);
          const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
          d.setAAD(aad);
          d.setAuthTag(c.getAuthTag());
          d.update(ct);
          d.final();
        }, rateMs),
    },
    {
      key: 'anchor_webcrypto_aes_gcm_1k_per_s',
      label: 'WebCrypto AES-256-GCM 1 KiB, awaited',
      run: async () => {
        const subtle = globalThis.crypto.subtle;
        const k = await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
        const params = { name: 'AES-GCM', iv, additionalData: aad };
        return rateAsync(async () => subtle.decrypt(params, k, await subtle.encrypt(params, k, kib)), rateMs);
      },
    },
    {
      key: 'anchor_x25519_per_s',
      label: 'libsodium X25519',
      run: async () => {
        const secret = libsodium.randombytes_buf(32);
        const peer = libsodium.crypto_scalarmult_base(libsodium.randombytes_buf(32));
        return rateSync(() => libsodium.crypto_scalarmult(secret, peer), rateMs);
      },
    },
    {
      // The native alternative to libsodium's X25519, with the keys already imported.
      key: 'anchor_node_x25519_per_s',
      label: 'node:crypto X25519',
      run: async () => {
        const { privateKey } = generateKeyPairSync('x25519');
        const { publicKey } = generateKeyPairSync('x25519');
        return rateSync(() => diffieHellman({ privateKey, publicKey }), rateMs);
      },
    },
    {
      // The X25519 work of a DH ratchet turn on the backend ready() chose (node:crypto here): a
      // new key pair, then two agreements with its secret (the ratchet's receiving step uses the
      // previous turn's secret, whose KeyObject node:crypto likewise already holds).
      key: 'anchor_dh_turn_per_s',
      label: 'ours: DH turn X25519 work, default backend',
      run: async () => dhTurnRate(x25519Backend(), rateMs),
    },
    {
      key: 'anchor_sodium_dh_turn_per_s',
      label: 'ours: DH turn X25519 work, libsodium backend',
      run: async () => dhTurnRate(createSodiumX25519(libsodium), rateMs),
    },
    {
      // libsodium's WASM randombytes_buf calls crypto.getRandomValues once per byte.
      key: 'anchor_sodium_randombytes_32b_per_s',
      label: 'libsodium randombytes_buf 32 B',
      run: async () => rateSync(() => libsodium.randombytes_buf(32), rateMs),
    },
    {
      key: 'anchor_getrandomvalues_32b_per_s',
      label: 'crypto.getRandomValues 32 B',
      run: async () => rateSync(() => globalThis.crypto.getRandomValues(new Uint8Array(32)), rateMs),
    },
    {
      key: 'anchor_hmac_sha256_32b_per_s',
      label: 'libsodium HMAC-SHA-256 32 B',
      run: async () => {
        const data = libsodium.randombytes_buf(32);
        return rateSync(() => libsodium.crypto_auth_hmacsha256(data, key), rateMs);
      },
    },
  ];
}

/** Key pairs with two agreements each per second: the X25519 work of one DH ratchet turn. */
function dhTurnRate(backend: X25519Backend, rateMs: number): number {
  const peer = backend.scalarMultBase(randomBytes(32));
  return rateSync(() => {
    const secret = randomBytes(32);
    backend.scalarMultBase(secret);
    backend.scalarMult(secret, peer);
    backend.scalarMult(secret, peer);
  }, rateMs);
}

function repetitions(quick: boolean): number {
  return quick ? 3 : 9;
}

async function run(ctx: SectionContext): Promise<void> {
  ctx.status('loading libsodium');
  await ready();
  await libsodium.ready;
  const list = tasks(ctx.quick);
  const reps = repetitions(ctx.quick);
  const samples = new Map<string, number[]>(list.map((t) => [t.key, []]));
  // Repetition 0 warms the JIT and the native library up and is not counted. Each repetition
  // runs every task once, ours next to theirs, so a noisy moment hits both alike.
  for (let rep = 0; rep <= reps; rep++) {
    for (const task of list) {
      ctx.step(`${task.label} (${rep === 0 ? 'warm-up' : `${rep}/${reps}`})`);
      settle();
      const value = await task.run();
      if (rep > 0) samples.get(task.key)!.push(value);
    }
  }
  const m = new Map([...samples].map(([key, values]) => [key, median(values)]));
  for (const [key, value] of m) ctx.record(key, value);
  const get = (key: string) => m.get(key)!;
  ctx.record('ratio_vs_libsignal', get('ours_msgs_per_s_1k') / get('libsignal_msgs_per_s_100b'));
  ctx.record('ratio_vs_libsignal_same_size_1k', get('ours_msgs_per_s_1k') / get('libsignal_msgs_per_s_1k'));
  ctx.record(
    'pingpong_ratio_vs_libsignal',
    get('ours_pingpong_msgs_per_s_100b') / get('libsignal_pingpong_msgs_per_s_100b'),
  );
  ctx.record('ours_us_per_msg_1k', 1e6 / get('ours_msgs_per_s_1k'));
  ctx.record('repetitions', reps);
}

export const crypto = defineSection({
  id: 'crypto',
  title: 'Crypto: Double Ratchet against libsignal',
  description:
    "Our Double Ratchet with header encryption (libs/crypto in Node: node:crypto's X25519 and " +
    "AES-256-GCM, libsodium WASM's HMAC) against @signalapp/libsignal-client (native Rust) doing the same work " +
    'in the same process, repetitions interleaved, median reported. A message is one encrypt plus one ' +
    'decrypt, wire bytes in between. One-way: a burst of 1,000 messages inside one established chain. ' +
    'Ping-pong: directions alternate, each message decrypted before the reply, so every message turns the ' +
    'DH ratchet. libsignal keeps its sessions as objects in in-memory stores (no serialization): an upper ' +
    'bound for a real client. Anchors are the bare primitives on this machine.',
  packages: ['@signalapp/libsignal-client', 'libsodium-wrappers-sumo'],
  quickBudgetSeconds: 30,
  metrics: [
    { key: 'ours_msgs_per_s_1k', label: 'ours, one-way, 1 KiB', unit: 'msgs/s' },
    { key: 'ours_msgs_per_s_100b', label: 'ours, one-way, 100 B', unit: 'msgs/s' },
    { key: 'libsignal_msgs_per_s_100b', label: 'libsignal, one-way, 100 B', unit: 'msgs/s' },
    { key: 'libsignal_msgs_per_s_1k', label: 'libsignal, one-way, 1 KiB', unit: 'msgs/s' },
    {
      key: 'ratio_vs_libsignal',
      label: 'one-way: ours 1 KiB / libsignal 100 B',
      unit: 'x',
      goal: { op: '>=', value: 2 },
    },
    { key: 'ratio_vs_libsignal_same_size_1k', label: 'one-way: ours 1 KiB / libsignal 1 KiB', unit: 'x' },
    { key: 'ours_pingpong_msgs_per_s_100b', label: 'ours, ping-pong, 100 B', unit: 'msgs/s' },
    { key: 'libsignal_pingpong_msgs_per_s_100b', label: 'libsignal, ping-pong, 100 B', unit: 'msgs/s' },
    {
      key: 'pingpong_ratio_vs_libsignal',
      label: 'ping-pong: ours / libsignal, 100 B',
      unit: 'x',
      goal: { op: '>=', value: 1 },
    },
    { key: 'ours_pingpong_msgs_per_s_1k', label: 'ours, ping-pong, 1 KiB', unit: 'msgs/s' },
    { key: 'libsignal_pingpong_msgs_per_s_1k', label: 'libsignal, ping-pong, 1 KiB', unit: 'msgs/s' },
    {
      key: 'ours_us_per_msg_1k',
      label: 'ours, one-way, 1 KiB, per message',
      unit: 'µs',
      goal: { op: '<', value: 100 },
      digits: 1,
    },
    { key: 'pickle_unpickle_per_s', label: 'ours, session pickle + unpickle', unit: '/s' },
    { key: 'pickle_unpickle_encrypted_per_s', label: 'ours, pickle + unpickle, encrypted', unit: '/s' },
    {
      key: 'libsignal_session_serialize_per_s',
      label: 'libsignal, SessionRecord serialize + deserialize',
      unit: '/s',
    },
    {
      key: 'libsignal_session_setup_ms',
      label: 'libsignal, PQXDH setup + first message',
      unit: 'ms',
      digits: 2,
    },
    { key: 'anchor_aes_gcm_1k_per_s', label: 'anchor: node:crypto AES-256-GCM 1 KiB enc+dec', unit: '/s' },
    {
      key: 'anchor_webcrypto_aes_gcm_1k_per_s',
      label: 'anchor: WebCrypto AES-256-GCM 1 KiB enc+dec, awaited',
      unit: '/s',
    },
    { key: 'anchor_x25519_per_s', label: 'anchor: libsodium X25519', unit: '/s' },
    { key: 'anchor_node_x25519_per_s', label: 'anchor: node:crypto X25519 (imported keys)', unit: '/s' },
    {
      key: 'anchor_dh_turn_per_s',
      label: 'anchor: DH turn (key pair + two X25519), default backend',
      unit: '/s',
    },
    {
      key: 'anchor_sodium_dh_turn_per_s',
      label: 'anchor: DH turn (key pair + two X25519), libsodium backend',
      unit: '/s',
    },
    { key: 'anchor_hmac_sha256_32b_per_s', label: 'anchor: libsodium HMAC-SHA-256, 32 B', unit: '/s' },
    {
      key: 'anchor_sodium_randombytes_32b_per_s',
      label: 'anchor: libsodium randombytes_buf, 32 B',
      unit: '/s',
    },
    { key: 'anchor_getrandomvalues_32b_per_s', label: 'anchor: crypto.getRandomValues, 32 B', unit: '/s' },
    { key: 'repetitions', label: 'repetitions (median of)', unit: '' },
  ],
  plan: (quick) => (repetitions(quick) + 1) * tasks(quick).length,
  run,
  docs: (v) => {
    const turn = v.anchor_dh_turn_per_s;
    const sodiumTurn = v.anchor_sodium_dh_turn_per_s;
    const aes = v.anchor_aes_gcm_1k_per_s;
    if (turn === undefined || sodiumTurn === undefined || aes === undefined) return '';
    return [
      'Ceilings the anchors put on ours: a ping-pong message turns the DH ratchet on the receiving side,',
      'a new key pair and two X25519. In Node that work runs on node:crypto (docs/crypto.md) and alone',
      `caps ping-pong near ${formatNumber(turn)} msgs/s; on libsodium's WASM X25519, the backend browsers`,
      `use, near ${formatNumber(sodiumTurn)}. A one-way message seals and opens a header and a body: two`,
      `AES-GCM encrypt+decrypt pairs, about ${formatNumber(aes / 2)} msgs/s from AES alone.`,
    ].join(' ');
  },
});
