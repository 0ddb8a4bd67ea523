/**
 * MessengerClient's options, their defaults (merged here, in one place) and their checks.
 */
import { IdentityPublicKey, fromHex } from '@usm/crypto';
import {
  type Clock,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  type MessageIdString,
  systemClock,
} from '@usm/protocol';
import type { BackoffOptions } from './backoff.js';
import type { SocketFactory } from './connection.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { OutboxOptions } from './outbox/outbox.js';
import type { ClientStore } from './storage/client-store.js';

export interface MessengerClientOptions {
  /** The relay's socket.io URL, e.g. `https://relay.example.org`. */
  relayUrl: string;
  /**
   * The relay's Ed25519 identity key, pinned: hex of the 32-byte key (64 digits) or of its
   * 34-byte encoding, or an IdentityPublicKey. A relay that cannot prove it is refused.
   */
  relayIdentityKey: string | IdentityPublicKey;
  /** Where the identity, sessions, outbox and inbox live. The client does not close it. */
  store: ClientStore;
  /** Time for handshake timestamps, `sentAt` and expiry. @default the system clock */
  clock?: Clock;
  /** The reconnect schedule (full jitter). @default BACKOFF_DEFAULTS (500 ms base, x2, 30 s cap) */
  backoff?: BackoffOptions;
  /** Reconnect after the connection drops. @default true */
  reconnect?: boolean;
  /** Outbox bounds and retry schedule. @default OUTBOX_DEFAULTS (1,000 entries, 30 days) */
  outbox?: Pick<OutboxOptions, 'maxEntries' | 'ttlMs' | 'retry'>;
  /** How long a request waits for the relay's ack. @default 10000 */
  requestTimeoutMs?: number;
  /** How long a message ahead of a gap waits for it. @default DEFAULT_REORDER_TIMEOUT_MS (10 s) */
  reorderTimeoutMs?: number;
  /** Message ids remembered per conversation for dedup. @default 2000 */
  seenIdsPerConversation?: number;
  /** One-time prekeys generated per top-up (1..100). @default 50 */
  oneTimePrekeyBatch?: number;
  /** Signed and last-resort KEM prekeys older than this are replaced on connect. @default 604800000 (7 days) */
  signedPrekeyMaxAgeMs?: number;
  /** Least time between two automatic session resets with one peer. @default 60000 */
  autoResetIntervalMs?: number;
  /**
   * While connected, pending mail is also fetched this often, besides on every connect: a push
   * the relay could not deliver (a node or its adapter under strain) is then picked up without
   * waiting for a reconnect. @default 30000
   */
  fetchIntervalMs?: number;
  /** Makes the socket (tests). @default socket.io-client's `io` */
  socketFactory?: SocketFactory;
  /** Test hooks: not for applications. */
  hooks?: MessengerClientHooks;
}

export interface MessengerClientHooks {
  /** Runs after a received message's atomic batch is durable, before the relay ack and the app. */
  afterPersist?: (id: MessageIdString) => void | Promise<void>;
}

type Defaulted =
  | 'reconnect'
  | 'seenIdsPerConversation'
  | 'oneTimePrekeyBatch'
  | 'signedPrekeyMaxAgeMs'
  | 'autoResetIntervalMs'
  | 'fetchIntervalMs';

/** The defaults of the options that have one (the outbox's are OUTBOX_DEFAULTS). */
export const CLIENT_DEFAULTS: Readonly<Required<Pick<MessengerClientOptions, Defaulted>>> = Object.freeze({
  reconnect: true,
  seenIdsPerConversation: 2_000,
  oneTimePrekeyBatch: 50,
  signedPrekeyMaxAgeMs: 7 * 24 * 60 * 60 * 1000,
  autoResetIntervalMs: 60_000,
  fetchIntervalMs: 30_000,
});

/** The options with every default filled in and the pinned key parsed. */
export type ResolvedOptions = MessengerClientOptions &
  Required<Pick<MessengerClientOptions, Defaulted | 'clock'>> & { readonly relayKey: IdentityPublicKey };

function invalid(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

function parsePinnedKey(key: string | IdentityPublicKey): IdentityPublicKey {
  if (key instanceof IdentityPublicKey) return key;
  if (typeof key === 'string' && /^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{68})$/.test(key)) {
    try {
      const bytes = fromHex(key.toLowerCase());
      return bytes.length === 32 ? new IdentityPublicKey(bytes) : IdentityPublicKey.decode(bytes);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        'relayIdentityKey: not an Ed25519 identity key',
        {
          cause: err,
        },
      );
    }
  }
  throw invalid('relayIdentityKey: expected an IdentityPublicKey or the hex of a 32-byte Ed25519 key');
}

/** Checks `options` (INVALID_ARGUMENT) and fills in the defaults. */
export function resolveOptions(options: MessengerClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw invalid('MessengerClient.open: expected options');
  if (typeof options.relayUrl !== 'string' || options.relayUrl.length === 0) {
    throw invalid('relayUrl: expected the relay URL');
  }
  const relayKey = parsePinnedKey(options.relayIdentityKey);
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const resolved: ResolvedOptions = {
    ...CLIENT_DEFAULTS,
    ...(defined as unknown as MessengerClientOptions),
    clock: options.clock ?? systemClock,
    relayKey,
  };
  const batch = resolved.oneTimePrekeyBatch;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_ONE_TIME_PREKEYS_PER_PUBLISH) {
    throw invalid(`oneTimePrekeyBatch: expected 1 to ${MAX_ONE_TIME_PREKEYS_PER_PUBLISH}`);
  }
  return resolved;
}
