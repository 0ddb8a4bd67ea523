/**
 * Nest's socket.io adapter with a lean per-socket handler binding. Nest's IoAdapter wires every
 * `@SubscribeMessage` handler of every socket as a long-lived rxjs pipeline (`fromEvent` +
 * `mergeMap` + `takeUntil(disconnect$)`, plus a shared `disconnect$`): for the relay's eight
 * handlers that is about 34 KB of JavaScript heap per idle connection (32 subscribers with their
 * finalizer arrays, some 160 closures and 140 contexts; heap snapshots in docs/benchmarks.md),
 * three times what socket.io itself keeps per socket. Here each handler is one plain listener per
 * socket; an rxjs pipeline exists only while a message is being handled.
 *
 * Same semantics as IoAdapter.bindMessageHandlers: guards, pipes, interceptors and exception
 * filters run (they are inside Nest's `callback`); a handler's non-nil result answers the
 * acknowledgement (or is emitted when it has an `event`), unless the handler takes the ack itself
 * (`@Ack()`); a handler error that escapes its filters is logged (its class and stack frames, never
 * its message, which might quote input) and the socket keeps its handlers; once the socket
 * disconnected, results of handlers still running are dropped and no further event is handled.
 *
 * @example
 * const app = await NestFactory.create(AppModule);
 * app.useWebSocketAdapter(new RelayIoAdapter(app));
 */
import type { MessageMappingProperties } from '@nestjs/websockets';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { EMPTY, type Observable, type Subscription, catchError, defer, filter, map } from 'rxjs';
import { errorClass, stackFrames } from './relay-exception.filter.js';
import { RELAY_MESSAGES as M } from './relay.messages.js';

/** The socket as IoAdapter types it (from the socket.io copy Nest's adapter depends on). */
type IoSocket = Parameters<IoAdapter['bindMessageHandlers']>[0];
type Handled = [response: { event?: string; data?: unknown }, ack: unknown, isAckHandledManually: boolean];

export class RelayIoAdapter extends IoAdapter {
  override bindMessageHandlers(
    socket: IoSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    // Subscriptions of handlers still running on this socket, made only when one is.
    let running: Set<Subscription> | undefined;
    let disconnected = false;
    for (const { message, callback, isAckHandledManually } of handlers) {
      socket.on(message as string, (...args: unknown[]) => {
        if (disconnected) return;
        const { data, ack } = this.mapPayload(args.length > 1 ? args : args[0]);
        const subscription = defer(() => transform(callback(data, ack)))
          .pipe(
            filter((response) => response !== null && response !== undefined),
            map((response): Handled => [response as Handled[0], ack, isAckHandledManually]),
            catchError((err: unknown) => {
              this.logger.error(M.handlerEscaped(String(message), errorClass(err)), stackFrames(err));
              return EMPTY;
            }),
          )
          .subscribe(([response, reply, manual]) => {
            if (response.event) {
              socket.emit(response.event, response.data);
              return;
            }
            if (!manual && typeof reply === 'function') (reply as (r: unknown) => void)(response);
          });
        if (subscription.closed) return;
        const set = (running ??= new Set());
        set.add(subscription);
        subscription.add(() => set.delete(subscription));
      });
    }
    socket.once('disconnect', () => {
      disconnected = true;
      if (running) for (const subscription of [...running]) subscription.unsubscribe();
      running = undefined;
    });
  }
}
