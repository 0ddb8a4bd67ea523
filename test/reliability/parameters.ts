/**
 * Every size of the reliability suite, in one place, with its CI value (`npm test`) and its soak
 * value (`npm run test:soak`, which sets USM_SOAK=1 and runs only test/reliability).
 *
 * The CI values keep the whole suite within its share of CI time on a 2-core machine; where the
 * issue names a figure (1,000 messages in 5 permutations, 10,000 messages, 10,000 fuzzed frames...)
 * the CI value is at least that figure. The soak values are for a developer's machine or a nightly
 * job. Protocol limits (MAX_SKIP, envelope size, handshake window...) are NOT here: the suite
 * imports those from the code that enforces them, so a changed limit fails the tests that pin it.
 */

/** True in `npm run test:soak` (USM_SOAK=1). */
export const SOAK = process.env['USM_SOAK'] === '1';

/** Written on every report row: which set of sizes produced it. */
export const RELIABILITY_MODE: 'ci' | 'soak' = SOAK ? 'soak' : 'ci';

function size(ci: number, soak: number): number {
  return SOAK ? soak : ci;
}

/** The suite's sizes; each comment says what the figure counts. */
export const SIZES = {
  // --- Tampering and replay -------------------------------------------------------------
  /** Plaintext bytes of the envelope whose every bit is flipped (its ciphertext is a few hundred bytes more). */
  bitFlipPlaintextBytes: size(64, 1024),
  /**
   * Messages delivered in a random order per seed. One chain: a random order can put the last
   * message first, so this stays at MAX_SKIP (1,000) in both runs; the soak run adds seeds instead.
   */
  permutationMessages: size(1000, 1000),
  /** Seeds (independent random orders) for the permutation case. */
  permutationSeeds: size(5, 50),
  /** Messages in the (key, nonce) uniqueness case. */
  nonceMessages: size(10_000, 50_000),
  /** DH ratchet turns (the direction changes) within those messages. */
  nonceDhTurns: size(20, 100),
  /** Client restarts (state reloaded from storage) within those messages. */
  nonceRestarts: size(3, 10),
  /** Concurrent bundle claims racing for the one-time prekeys. */
  bundleClaims: size(100, 500),
  /** One-time prekeys published before the race. */
  bundleOneTimePrekeys: size(10, 50),

  // --- Hostile input ----------------------------------------------------------------------
  /** Canary clients that keep exchanging while one socket sends a huge frame / the fuzzer runs. */
  canaryClients: size(50, 100),
  /** Bytes of the oversized frame that must close only its own socket. */
  hugeFrameBytes: size(10 * 1024 * 1024, 10 * 1024 * 1024),
  /** Raw socket.io frames the fuzzer writes to the relay child process. */
  fuzzFrames: size(10_000, 100_000),
  /** Sends in the flood case (well past the rate limit's burst). */
  floodSends: size(200, 1000),

  // --- Faults (kill -9, PostgreSQL outage, partitions) ----------------------------------------
  /** Relay nodes in the fault and load cases. */
  faultNodes: 3,
  /** Senders while one node is killed with SIGKILL. */
  killSenders: size(50, 200),
  /** Messages per sender while one node is killed. */
  killMessagesPerSender: size(100, 500),
  /** How long PostgreSQL stays stopped under load, in milliseconds. */
  postgresOutageMs: size(20_000, 60_000),
  /** Messages sent to a partitioned client. */
  partitionReceive: size(500, 5000),
  /** Messages a partitioned client sends (half the acks dropped). */
  partitionSend: size(200, 2000),

  // --- No message lost (delivery.spec.ts) ---------------------------------------------------
  /** Relay nodes in the delivery cases (sender and recipient on different nodes). */
  deliveryNodes: 2,
  /** Messages sent to an offline recipient: past MAX_SKIP (1,000), the figure. */
  backlogMessages: size(3_000, 6_000),
  /** Messages sent while that recipient reconnects and fetches the backlog. */
  backlogLiveMessages: size(1_000, 3_000),
  /**
   * Messages sent to a recipient whose socket stopped reading (past MAX_SKIP). The soak size stays
   * under the relay's default mailbox quota (10,000).
   */
  stalledMessages: size(2_000, 9_000),
  /** Body bytes of each of those (bytes content, so the relay's push backlog grows fast). */
  stalledMessageBytes: 32 * 1024,
  /** Pairs chatting both ways while PostgreSQL backends are terminated and a node is killed. */
  chatPairs: size(10, 25),
  /** How long they chat, in seconds. */
  chatSeconds: size(60, 300),
  /** Each party sends to its partner every this many milliseconds (with jitter). */
  chatIntervalMs: 250,

  // --- Load ---------------------------------------------------------------------------------
  /** Clients in the load case. */
  loadClients: size(20, 100),
  /** Messages per client in the load case. */
  loadMessagesPerClient: size(200, 1000),
  /** Messages per second each load client sends. */
  loadRatePerClient: 10,
} as const;

export type ReliabilitySize = keyof typeof SIZES;
