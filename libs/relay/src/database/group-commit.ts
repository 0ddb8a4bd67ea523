/**
 * Group commit: calls that arrive while earlier groups are being written wait, and the next group
 * carries all of them, so under load one statement (one round trip, one transaction) serves many
 * calls, while a lone call on an idle relay starts at once. The message store runs its stores
 * (several groups at once, on disjoint mailboxes) and its acks (one DELETE at a time) through it.
 *
 * The contract:
 * - At most `concurrency` groups run at once. On every `submit` and whenever a group settles,
 *   groups are started for the waiting calls until that bound is reached.
 * - A group takes the waiting calls in arrival order, passing over a call that shares a key with a
 *   group in flight or with a call passed over before it in the same pass. So calls that share a
 *   key run in arrival order, and two groups in flight never share a key.
 * - A group weighs at most `maxWeight` (the sum of `weight` over its calls); its first call always
 *   fits, whatever it weighs.
 * - `run` gets a group's calls in order and returns one result per call, in the same order. Each
 *   call settles with its result once `run` resolved, or with `run`'s error: a failed group fails
 *   every call in it.
 *
 * @example
 * const acks = new GroupCommit<AckCall, number>({ run: (calls) => deleteAll(calls) });
 * const deleted = await acks.submit({ recipient, ids });
 */

export interface GroupCommitOptions<C, R> {
  /** Writes one group; resolves with one result per call, in the group's order. */
  run(group: readonly C[]): Promise<readonly R[]>;
  /**
   * Groups running at once.
   * @default 1
   */
  concurrency?: number;
  /**
   * Most weight in one group (its first call always fits).
   * @default Infinity
   */
  maxWeight?: number;
  /**
   * A call's weight.
   * @default 1
   */
  weight?(call: C): number;
  /**
   * What a call touches (a mailbox, say): calls sharing a key run in arrival order and never in
   * two groups at once.
   * @default none
   */
  keys?(call: C): Iterable<string>;
}

/** A submitted call until its group settles. */
interface Waiting<C, R> {
  readonly call: C;
  readonly keys: readonly string[];
  resolve(result: R): void;
  reject(err: unknown): void;
}

/** Batches calls into groups, each written by one `run` (see the contract above). */
export class GroupCommit<C, R> {
  private waiting: Waiting<C, R>[] = [];
  /** Keys of the groups in flight. */
  private readonly busy = new Set<string>();
  private running = 0;

  constructor(private readonly options: GroupCommitOptions<C, R>) {}

  /** Resolves with this call's result once the group carrying it was written. */
  submit(call: C): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ call, keys: [...new Set(this.options.keys?.(call) ?? [])], resolve, reject });
      this.start();
    });
  }

  private start(): void {
    const { concurrency = 1, maxWeight = Infinity } = this.options;
    while (this.running < concurrency && this.waiting.length > 0) {
      const held = new Set(this.busy);
      const group: Waiting<C, R>[] = [];
      const later: Waiting<C, R>[] = [];
      let weight = 0;
      for (const waiting of this.waiting) {
        const w = this.options.weight?.(waiting.call) ?? 1;
        const fits = group.length === 0 || weight + w <= maxWeight;
        if (fits && !waiting.keys.some((k) => held.has(k))) {
          group.push(waiting);
          weight += w;
        } else {
          later.push(waiting);
          for (const k of waiting.keys) held.add(k);
        }
      }
      if (group.length === 0) return;
      this.waiting = later;
      const keys = new Set(group.flatMap((waiting) => waiting.keys));
      for (const k of keys) this.busy.add(k);
      this.running++;
      void this.write(group).finally(() => {
        for (const k of keys) this.busy.delete(k);
        this.running--;
        this.start();
      });
    }
  }

  private async write(group: readonly Waiting<C, R>[]): Promise<void> {
    try {
      const results = await this.options.run(group.map((waiting) => waiting.call));
      group.forEach((waiting, i) => waiting.resolve(results[i] as R));
    } catch (err) {
      for (const waiting of group) waiting.reject(err);
    }
  }
}
