/**
 * A small typed event emitter that runs in browsers and Node alike (no node:events). Listeners
 * may be async: `emitAsync` awaits them one after another, which the client uses to know when
 * the application's `message` handler has returned.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => unknown;

export class TypedEmitter<Events extends { [K in keyof Events]: Listener }> {
  readonly #listeners = new Map<keyof Events, Listener[]>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    const list = this.#listeners.get(event) ?? [];
    this.#listeners.set(event, [...list, listener]);
    this.listenerAdded(event);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) this.#listeners.set(event, [...list.slice(0, i), ...list.slice(i + 1)]);
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener synchronously; returns the errors they threw (never throws). */
  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): unknown[] {
    const errors: unknown[] = [];
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        const result = listener(...args);
        if (result instanceof Promise) result.catch(() => undefined);
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }

  /** Calls every listener in turn, awaiting each; returns the errors they threw or rejected with. */
  protected async emitAsync<K extends keyof Events>(
    event: K,
    ...args: Parameters<Events[K]>
  ): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        await listener(...args);
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }

  /** Hook for subclasses: a listener was added. */
  protected listenerAdded(_event: keyof Events): void {}
}
