/**
 * The requests a node is handling, so shutdown loses none: from `close()` on, new sends are
 * refused (UNAVAILABLE, nothing stored) and new connections are closed; `drain()` then waits for
 * every request in flight (stores commit, replies go out) before the gateway closes its sockets.
 */
import { Injectable } from '@nestjs/common';

@Injectable()
export class RelayRequests {
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  /** True once shutdown began. */
  get closing(): boolean {
    return this.closed;
  }

  /** Runs a handler body, remembered until it settles so `drain` can wait for it. */
  track<T>(body: () => Promise<T>): Promise<T> {
    const run = body();
    this.inFlight.add(run);
    void run.then(
      () => this.inFlight.delete(run),
      () => this.inFlight.delete(run),
    );
    return run;
  }

  /** Shutdown began: take no new work. */
  close(): void {
    this.closed = true;
  }

  /** Closes, then resolves once no request is in flight and their replies were handed to socket.io. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    // Their replies are sent from promise callbacks: let those run before the sockets close.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
