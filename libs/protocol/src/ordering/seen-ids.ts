/**
 * A bounded memory of message ids already processed, for exactly-once delivery to the
 * application over an at-least-once wire (docs/client.md, "Exactly once, in order"): a message whose ack was lost is
 * delivered again by the relay, and the client must recognise it by id. The ratchet refuses a
 * replayed ciphertext too, but only while it keeps that message key; this memory also covers a
 * redelivery after the state moved on, and costs one lookup before any decryption.
 *
 * Eviction is first-in first-out (a ring): the oldest ids go first, since a redelivery comes
 * soon after the first delivery (before the ack reached the relay), never after thousands of
 * newer messages. Use one per conversation or one per device; capacity is fixed at creation.
 *
 * Serialized form (store it with the client's state, encrypted at rest like the rest of it):
 *
 *   version (1) = 1 | capacity (u32 BE) | count (u32 BE) | count x 16-byte ids, oldest first
 *
 * The decoder checks capacity against MAX_SEEN_IDS_CAPACITY and count against the capacity and
 * the bytes present before it allocates; duplicate ids are refused, so a decoded memory
 * re-encodes to the same bytes.
 */
import { ProtocolError, ProtocolErrorCode } from '../errors.js';
import { fromBase64url, toBase64url } from '../encoding/base64url.js';
import { BinaryReader, BinaryWriter, assertMaxLength, assertUint8Array } from '../encoding/binary-reader.js';
import { checkMessageId } from '../envelope/message-id.js';
import { DEFAULT_SEEN_IDS_CAPACITY, MAX_SEEN_IDS_CAPACITY, MESSAGE_ID_BYTES } from '../limits.js';

export const SEEN_IDS_VERSION = 1;

const SEEN_IDS_HEADER_BYTES = 1 + 4 + 4;

/** The largest serialized memory. */
export const MAX_SEEN_IDS_BYTES = SEEN_IDS_HEADER_BYTES + MAX_SEEN_IDS_CAPACITY * MESSAGE_ID_BYTES;

/**
 * @example
 * const seen = new SeenMessageIds();            // 10,000 ids
 * if (!seen.add(envelope.id)) return ack(id);   // a redelivery: ack again, do not show twice
 * store.save('seen', seen.encode());
 */
export class SeenMessageIds {
  /** Ids as base64url strings; when full, `#head` is the oldest slot. */
  readonly #ring: string[] = [];
  readonly #set = new Set<string>();
  #head = 0;

  constructor(readonly capacity: number = DEFAULT_SEEN_IDS_CAPACITY) {
    checkCapacity(capacity);
  }

  get size(): number {
    return this.#set.size;
  }

  has(id: Uint8Array): boolean {
    checkMessageId(id);
    return this.#set.has(toBase64url(id));
  }

  /** Remembers `id`; returns false when it was already there (a duplicate), true otherwise. */
  add(id: Uint8Array): boolean {
    checkMessageId(id);
    const key = toBase64url(id);
    if (this.#set.has(key)) return false;
    if (this.#ring.length < this.capacity) {
      this.#ring.push(key);
    } else {
      this.#set.delete(this.#ring[this.#head]!);
      this.#ring[this.#head] = key;
      this.#head = (this.#head + 1) % this.capacity;
    }
    this.#set.add(key);
    return true;
  }

  /** The ids, oldest first. */
  *ids(): IterableIterator<Uint8Array> {
    const n = this.#ring.length;
    for (let i = 0; i < n; i++) {
      yield fromBase64url(this.#ring[(this.#head + i) % n]!, MESSAGE_ID_BYTES, 'seen id');
    }
  }

  encode(): Uint8Array {
    const w = new BinaryWriter(SEEN_IDS_HEADER_BYTES + this.#ring.length * MESSAGE_ID_BYTES)
      .u8(SEEN_IDS_VERSION)
      .u32(this.capacity)
      .u32(this.#ring.length);
    for (const id of this.ids()) w.bytes(id);
    return w.finish();
  }

  /** Restores a memory; throws ProtocolError only (TOO_LARGE, UNSUPPORTED_VERSION, MALFORMED). */
  static decode(bytes: Uint8Array): SeenMessageIds {
    assertUint8Array(bytes, 'seen ids');
    assertMaxLength(bytes.length, MAX_SEEN_IDS_BYTES, 'seen ids');
    const r = new BinaryReader(bytes, 'seen ids');
    const version = r.u8('version');
    if (version !== SEEN_IDS_VERSION) {
      throw new ProtocolError(
        ProtocolErrorCode.UnsupportedVersion,
        `seen ids: version ${version} is not supported (expected ${SEEN_IDS_VERSION})`,
      );
    }
    const capacity = r.u32('capacity');
    checkCapacity(capacity);
    const count = r.u32('count');
    if (count > capacity) {
      throw new ProtocolError(
        ProtocolErrorCode.Malformed,
        `seen ids: count ${count} exceeds capacity ${capacity}`,
      );
    }
    if (r.remaining !== count * MESSAGE_ID_BYTES) {
      throw new ProtocolError(
        ProtocolErrorCode.Malformed,
        `seen ids: ${count} ids need ${count * MESSAGE_ID_BYTES} bytes, ${r.remaining} present`,
      );
    }
    const seen = new SeenMessageIds(capacity);
    for (let i = 0; i < count; i++) {
      if (!seen.add(r.fixed(MESSAGE_ID_BYTES, `id ${i}`))) {
        throw new ProtocolError(ProtocolErrorCode.Malformed, `seen ids: id ${i} is a duplicate`);
      }
    }
    r.end();
    return seen;
  }
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new ProtocolError(
      ProtocolErrorCode.Malformed,
      'seen ids: capacity must be an integer of at least 1',
    );
  }
  if (capacity > MAX_SEEN_IDS_CAPACITY) {
    throw new ProtocolError(
      ProtocolErrorCode.TooLarge,
      `seen ids: capacity ${capacity}, the limit is ${MAX_SEEN_IDS_CAPACITY}`,
    );
  }
}
