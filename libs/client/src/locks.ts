/**
 * The client's ways of running async tasks one at a time: `SerialQueue` (one line: the outbox's
 * mutations, a store's writes, the prekey store's writes; @usm/crypto's, the one copy) and
 * `KeyedLock` (one line per key: per conversation), built on it. A task runs after the one queued
 * before it settled, whether that one resolved or threw.
 */
import { SerialQueue } from '@usm/crypto';

export { SerialQueue };

/** Runs tasks one at a time per key (per conversation), in the order they were queued. */
export class KeyedLock {
  /** A queue per key while it has tasks queued or running. */
  readonly #queues = new Map<string, { readonly queue: SerialQueue; pending: number }>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let line = this.#queues.get(key);
    if (!line) {
      line = { queue: new SerialQueue(), pending: 0 };
      this.#queues.set(key, line);
    }
    const current = line;
    current.pending++;
    const run = current.queue.run(task);
    const done = () => {
      if (--current.pending === 0 && this.#queues.get(key) === current) this.#queues.delete(key);
    };
    void run.then(done, done);
    return run;
  }
}
