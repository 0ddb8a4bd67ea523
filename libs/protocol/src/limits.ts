/**
 * Limits of the wire formats. Each bounds what one peer (an honest client, a hostile client, or
 * a compromised relay) can make the other allocate, store or compute, and each decoder checks
 * them BEFORE it allocates anything. The relay gateway and the client import the same numbers,
 * so a payload one side builds is never refused by the other for size.
 *
 * Rationale per constant; sizes in bytes unless the name says otherwise.
 */

const KiB = 1024;

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/**
 * socket.io's `maxHttpBufferSize` for the relay. Engine.IO closes a connection whose packet (or
 * long-polling POST body) exceeds it, so it must hold the largest envelope with room to spare,
 * yet stay small enough that one hostile client cannot make a node buffer megabytes.
 */
export const SOCKET_MAX_HTTP_BUFFER_BYTES = 128 * KiB;

/**
 * Long-polling carries binary as base64 (4/3 of the size), and the whole POST body must fit in
 * SOCKET_MAX_HTTP_BUFFER_BYTES; 3/4 of it is what binary may add up to in one event.
 */
export const MAX_EVENT_BINARY_BYTES = (SOCKET_MAX_HTTP_BUFFER_BYTES * 3) / 4;

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/**
 * The largest envelope ciphertext. 64 KiB holds any text message and a first (session-setup)
 * message; larger content (attachments) is uploaded elsewhere and referenced from a message.
 */
export const MAX_ENVELOPE_CIPHERTEXT_BYTES = 64 * KiB;

/**
 * The smallest ciphertext a relay accepts: an AEAD tag alone is 16 bytes, so nothing shorter can
 * be a real message, and an empty one would only cost storage.
 */
export const MIN_ENVELOPE_CIPHERTEXT_BYTES = 16;

/** Message ids are 128 random bits: collisions stay negligible (birthday bound 2^64). */
export const MESSAGE_ID_BYTES = 16;

/** A message id as base64url without padding: ceil(16 * 4 / 3) characters. */
export const MESSAGE_ID_STRING_CHARS = 22;

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/** An address's identity part is an Ed25519 public key (RFC 8032 §5.1.5). */
export const ADDRESS_IDENTITY_BYTES = 32;

/** Binary address: identity key (32) then device id (u32, big-endian). */
export const ADDRESS_BYTES = ADDRESS_IDENTITY_BYTES + 4;

/** Device ids are u32; 0 is reserved (never a device) so a zeroed field is never a valid address. */
export const MIN_DEVICE_ID = 1;
export const MAX_DEVICE_ID = 0xffff_ffff;

/** The first device of every identity, until multi-device linking exists. */
export const DEFAULT_DEVICE_ID = 1;

/** base64url of the 32-byte key (43 characters) + '.' + up to 10 decimal digits. */
export const MAX_ADDRESS_STRING_CHARS = 43 + 1 + 10;

// ---------------------------------------------------------------------------------------------
// Padding
// ---------------------------------------------------------------------------------------------

/**
 * Room left between the largest padded plaintext and MAX_ENVELOPE_CIPHERTEXT_BYTES for what
 * encryption adds: the ratchet's sealed header (68) and body tag, and on a first message the
 * session-setup data (an X-Wing ciphertext alone is 1,120 bytes, plus keys and prekey ids).
 */
export const MAX_CIPHERTEXT_OVERHEAD_BYTES = 4 * KiB;

/**
 * Padded plaintext sizes (ISO/IEC 7816-4 padding, see envelope/padding.ts). Each step is 4x the
 * last, so padding never costs more than 4x while the relay sees only five distinct sizes. The
 * last bucket leaves MAX_CIPHERTEXT_OVERHEAD_BYTES under the envelope limit.
 */
export const PADDING_BUCKETS: readonly number[] = Object.freeze([
  256,
  1 * KiB,
  4 * KiB,
  16 * KiB,
  MAX_ENVELOPE_CIPHERTEXT_BYTES - MAX_CIPHERTEXT_OVERHEAD_BYTES,
]);

/** The largest padded plaintext (the last bucket). */
export const MAX_PADDED_PLAINTEXT_BYTES = MAX_ENVELOPE_CIPHERTEXT_BYTES - MAX_CIPHERTEXT_OVERHEAD_BYTES;

/** The largest plaintext that can be padded: the padding always adds at least the 0x80 byte. */
export const MAX_UNPADDED_PLAINTEXT_BYTES = MAX_PADDED_PLAINTEXT_BYTES - 1;

// ---------------------------------------------------------------------------------------------
// Socket events (counts per call)
// ---------------------------------------------------------------------------------------------

/**
 * Envelopes in one `send`. Batching amortises the durable store's round trip (PostgreSQL inserts
 * in batches); 50 keeps one call's work bounded, and the byte total is capped separately.
 */
export const MAX_ENVELOPES_PER_SEND = 50;

/**
 * Encoded envelope bytes in one `send`: the binary budget of one event, so a batch is accepted
 * whichever transport carries it. A single maximal envelope always fits.
 */
export const MAX_SEND_BATCH_BYTES = MAX_EVENT_BINARY_BYTES;

/** Message ids in one `ack`: one DELETE ... WHERE id = ANY($1) of bounded size. */
export const MAX_ACKS_PER_CALL = 500;

/** Mail items in one `fetch` page or one `mail` push: bounded work and memory per reply. */
export const MAX_FETCH_PAGE = 50;

/** The page size when `fetch` does not ask for one. */
export const DEFAULT_FETCH_PAGE = 50;

/**
 * Encoded envelope bytes in one `fetch` page or `mail` push. The relay stops a page before this
 * total, but always sends at least one item, so a maximal envelope still gets through.
 */
export const MAX_FETCH_PAGE_BYTES = MAX_EVENT_BINARY_BYTES;

/** An opaque `fetch` cursor chosen by the relay (e.g. a base64url row key): short, printable. */
export const MAX_CURSOR_CHARS = 128;

/**
 * One handshake message (Init, Response or Complete) in a socket event. Today's are under 200
 * bytes (handshake/handshake-messages.ts); 4 KiB leaves room for a version that adds a
 * post-quantum ephemeral (an X-Wing key is 1,216 bytes, its ciphertext 1,120) without a new limit.
 */
export const MAX_HANDSHAKE_MESSAGE_BYTES = 4 * KiB;

/**
 * One encoded prekey record (signed prekey, KEM prekey, one-time prekey): the largest, a signed
 * X-Wing prekey, is about 1,300 bytes (1,216 key + 64 signature + ids and version bytes).
 */
export const MAX_PREKEY_RECORD_BYTES = 2 * KiB;

/**
 * One-time prekeys in one `prekeys:publish`. 100 keys is Signal's usual refill batch; the byte
 * total of a publish is capped separately at MAX_EVENT_BINARY_BYTES.
 */
export const MAX_ONE_TIME_PREKEYS_PER_PUBLISH = 100;

/**
 * Binary attachments one socket.io packet may carry (each Uint8Array is one). socket.io-parser's
 * default is 10, below what our own limits allow (50 envelopes per send or fetch page, 102
 * prekey records per publish), and a packet over it closes the socket; both ends use
 * `socketParser` (socket-parser.ts), which raises it to this bound. Byte totals stay capped by
 * MAX_EVENT_BINARY_BYTES.
 */
export const MAX_SOCKET_BINARY_ATTACHMENTS = 128;

/** Prekey ids are u32 (ids wrap per key kind at the client; the relay keys on (address, id)). */
export const MAX_PREKEY_ID = 0xffff_ffff;

/** The relay pushes `prekeys:low` when a device's one-time prekeys fall below this count. */
export const LOW_PREKEY_THRESHOLD = 10;

/** `retryAfterMs` in error replies: at most one hour, so a client never waits on a bogus value. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** Error reply messages: enough for a helpful sentence, never a payload. */
export const MAX_ERROR_MESSAGE_CHARS = 512;

// ---------------------------------------------------------------------------------------------
// Ordering, dedup and the application payload
// ---------------------------------------------------------------------------------------------

/**
 * Messages a reorder buffer holds while waiting for a gap to fill. Past it the gap is given up
 * and the buffer released in order: a sender far ahead cannot make a receiver hold unbounded
 * plaintext in memory.
 */
export const MAX_REORDER_BUFFER = 256;

/**
 * How long the oldest buffered message waits for a missing predecessor before the gap is given
 * up. The relay delivers a conversation's mail oldest first, so a gap that outlives a round of
 * fetching is a lost (or expired) message, not a slow one.
 */
export const DEFAULT_REORDER_TIMEOUT_MS = 10_000;

/** Per-conversation sequence numbers are u32; a session is reset before one would wrap. */
export const MAX_SEQUENCE = 0xffff_ffff;

/** Default capacity of a seen-message-id memory: days of mail for a busy conversation. */
export const DEFAULT_SEEN_IDS_CAPACITY = 10_000;

/** The largest seen-id memory a decoder accepts (16 MiB of ids): a pickle cannot claim more. */
export const MAX_SEEN_IDS_CAPACITY = 1_000_000;

/** Message ids in one delivery receipt: as many as one `ack` call deletes. */
export const MAX_RECEIPT_IDS = MAX_ACKS_PER_CALL;

/**
 * The largest encoded application payload: it must fit into the largest padding bucket once
 * the padding's 0x80 byte is appended.
 */
export const MAX_APPLICATION_PAYLOAD_BYTES = MAX_UNPADDED_PLAINTEXT_BYTES;
