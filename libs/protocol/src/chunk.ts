/**
 * Splits what crosses the socket into events within the protocol's per-event limits: a count
 * (acks per call, ids per receipt, prekeys per publish, envelopes per send or per push) and, for
 * envelopes, a byte total. The client chunks its requests and the relay its pushes with it. An
 * item larger than `maxBytes` on its own still gets a chunk of its own.
 */

export interface ChunkLimits<T> {
  /** Items per chunk, at most (>= 1). */
  readonly maxCount: number;
  /** Bytes per chunk, at most, as `bytesOf` counts them. @default no byte limit */
  readonly maxBytes?: number;
  readonly bytesOf?: (item: T) => number;
}

/** `items` in order, in chunks within `limits`. */
export function chunk<T>(items: readonly T[], limits: ChunkLimits<T>): T[][] {
  const { maxCount, maxBytes = Infinity, bytesOf = () => 0 } = limits;
  if (!Number.isInteger(maxCount) || maxCount < 1) throw new RangeError('chunk: maxCount must be >= 1');
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (current.length > 0 && (current.length >= maxCount || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
