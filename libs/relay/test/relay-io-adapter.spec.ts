/**
 * RelayIoAdapter binds a gateway's handlers with plain per-socket listeners instead of Nest's
 * per-socket rxjs pipelines (it saves memory per idle connection; the bench measures that). These
 * tests pin that nothing else changes: each case runs against Nest's own IoAdapter and against
 * RelayIoAdapter, with the same expectations, on a small fixture gateway (guard, exception
 * filter, manual ack, event replies, a handler still running when its socket goes away).
 */
import {
  type ArgumentsHost,
  type CanActivate,
  Catch,
  type ExecutionContext,
  type INestApplication,
  UseFilters,
  UseGuards,
  type WsExceptionFilter,
} from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { Test } from '@nestjs/testing';
import { Ack, MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { Observable } from 'rxjs';
import { io, type Socket } from 'socket.io-client';
import { RelayIoAdapter } from '../src/index.js';

/** Refuses a message whose body says `{ deny: true }`. */
class DenyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const body = context.switchToWs().getData<{ deny?: boolean } | undefined>();
    return body?.deny !== true;
  }
}

/** Answers the acknowledgement with the error's message. */
@Catch()
class ReplyFilter implements WsExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ack = host.getArgs<unknown[]>().find((a): a is (reply: unknown) => void => typeof a === 'function');
    ack?.({ status: 'error', message: exception instanceof Error ? exception.message : 'unknown' });
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

@WebSocketGateway({ transports: ['websocket'] })
@UseFilters(ReplyFilter)
@UseGuards(DenyGuard)
class FixtureGateway {
  /** Resolves when a `hang` handler started, and when its result was unsubscribed. */
  hangStarted = deferred();
  hangEnded = deferred();

  @SubscribeMessage('echo')
  echo(@MessageBody() body: unknown): unknown {
    return { status: 'ok', body };
  }

  @SubscribeMessage('echo:later')
  async echoLater(@MessageBody() body: unknown): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    return { status: 'ok', body };
  }

  @SubscribeMessage('as-event')
  asEvent(@MessageBody() body: unknown): unknown {
    return { event: 'echoed', data: body };
  }

  @SubscribeMessage('nothing')
  nothing(): undefined {
    return undefined;
  }

  @SubscribeMessage('fail')
  fail(): never {
    throw new Error('handler failed');
  }

  /** Takes the acknowledgement itself, later; its return value must not answer it. */
  @SubscribeMessage('manual')
  manual(@Ack() ack: (reply: unknown) => void): string {
    setImmediate(() => ack('from the handler'));
    return 'returned';
  }

  /** A result that never arrives: it ends only when unsubscribed. */
  @SubscribeMessage('hang')
  hang(): Observable<never> {
    this.hangStarted.resolve();
    return new Observable<never>(() => () => this.hangEnded.resolve());
  }
}

const ADAPTERS: [string, (app: INestApplication) => IoAdapter][] = [
  ["Nest's IoAdapter", (app) => new IoAdapter(app)],
  ['RelayIoAdapter', (app) => new RelayIoAdapter(app)],
];

describe.each(ADAPTERS)('gateway handlers bound by %s', (_name, makeAdapter) => {
  let app: INestApplication;
  let gateway: FixtureGateway;
  let url: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ providers: [FixtureGateway] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(makeAdapter(app));
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
    gateway = app.get(FixtureGateway);
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    await app.close();
  });

  async function connect(): Promise<Socket> {
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  }

  it("answers the acknowledgement with the handler's result, sync or async", async () => {
    const socket = await connect();
    await expect(socket.emitWithAck('echo', { n: 1 })).resolves.toEqual({ status: 'ok', body: { n: 1 } });
    await expect(socket.emitWithAck('echo:later', 'x')).resolves.toEqual({ status: 'ok', body: 'x' });
  });

  it('hands several arguments to the handler as one array body', async () => {
    const socket = await connect();
    await expect(socket.emitWithAck('echo', 1, 2)).resolves.toEqual({ status: 'ok', body: [1, 2] });
  });

  it('emits a result that names an event, with or without an acknowledgement', async () => {
    const socket = await connect();
    const echoed = new Promise((resolve) => socket.once('echoed', resolve));
    socket.emit('as-event', { n: 2 });
    await expect(echoed).resolves.toEqual({ n: 2 });
  });

  it('runs the guard: a refused message is answered by the exception filter, not the handler', async () => {
    const socket = await connect();
    await expect(socket.emitWithAck('echo', { deny: true })).resolves.toEqual({
      status: 'error',
      message: 'Forbidden resource',
    });
  });

  it("answers a handler's error through the filter, and the socket's handlers keep working", async () => {
    const socket = await connect();
    await expect(socket.emitWithAck('fail', {})).resolves.toEqual({
      status: 'error',
      message: 'handler failed',
    });
    await expect(socket.emitWithAck('echo', 'after')).resolves.toEqual({ status: 'ok', body: 'after' });
  });

  it('sends nothing for a nil result (a later reply on the same socket arrives first)', async () => {
    const socket = await connect();
    const replies: unknown[] = [];
    socket.emit('nothing', {}, (reply: unknown) => replies.push(reply));
    await expect(socket.emitWithAck('echo', 'next')).resolves.toEqual({ status: 'ok', body: 'next' });
    await expect(socket.emitWithAck('echo:later', 'next')).resolves.toEqual({ status: 'ok', body: 'next' });
    expect(replies).toEqual([]);
  });

  it('leaves a manually acknowledged event to the handler (its return value is not sent)', async () => {
    const socket = await connect();
    await expect(socket.emitWithAck('manual', {})).resolves.toBe('from the handler');
  });

  it('drops the result of a handler still running when its socket disconnects', async () => {
    const socket = await connect();
    socket.emit('hang', {}, () => undefined);
    await gateway.hangStarted.promise;
    socket.close();
    await gateway.hangEnded.promise; // never resolves (the test times out) if nothing unsubscribes
    expect(socket.connected).toBe(false);
  });
});
