/**
 * Runs async tasks one at a time, in the order they were queued: a task starts after the one
 * before it settled, whether that one resolved or threw. The ratchet and the session serialise
 * their operations with it; the client builds its per-conversation lock on it.
 *
 * @example
 * const queue = new SerialQueue();
 * const [a, b] = await Promise.all([queue.run(first), queue.run(second)]); // second starts after first
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task, task);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
