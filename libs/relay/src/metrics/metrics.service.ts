/**
 * Prometheus metrics of the relay, in a registry of its own (never prom-client's global one, which
 * belongs to the host). Labels carry event kinds and bucket names only: never an address, a
 * message id or any payload byte.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { MailSyncReason } from '@usm/protocol';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RELAY_OPTIONS } from '../relay.constants.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

/**
 * What happened to messages: each is one value of the `event` label of `messages_total`.
 * `withheld`: not pushed to a socket whose write backlog was over its cap (push-flow-control.ts);
 * the message stays stored and that socket fetches it.
 */
export type MessageEvent =
  'stored' | 'duplicate' | 'rejected' | 'delivered' | 'withheld' | 'acked' | 'expired';

/**
 * The relay's metrics. The gateway reports connections, handshakes and deliveries; the store,
 * cleanup and rate limiter report the rest themselves.
 *
 * @example
 * metrics.handshake(true);
 * res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
 */
@Injectable()
export class RelayMetrics {
  readonly registry = new Registry();
  private readonly connections: Gauge;
  private readonly handshakes: Counter<'result'>;
  private readonly messages: Counter<'event'>;
  private readonly mailSyncs: Counter<'reason'>;
  private readonly rateLimited: Counter<'bucket' | 'dimension'>;
  private readonly queueDepth: Gauge;
  private readonly storeLatency: Histogram<'operation'>;
  private readonly cleanupRows: Counter<'table'>;

  constructor(@Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'metrics'>) {
    const p = options.metrics.prefix;
    const registers = [this.registry];
    this.connections = new Gauge({ name: `${p}connections`, help: 'Open socket connections.', registers });
    this.handshakes = new Counter({
      name: `${p}handshakes_total`,
      help: 'Completed handshakes by result (ok, failed).',
      labelNames: ['result'],
      registers,
    });
    this.messages = new Counter({
      name: `${p}messages_total`,
      help: 'Messages by event: stored, duplicate, rejected (quota), delivered, withheld (socket behind), acked, expired.',
      labelNames: ['event'],
      registers,
    });
    this.mailSyncs = new Counter({
      name: `${p}mail_sync_total`,
      help: 'mail:sync pushes sent (fetch now: stored mail was not pushed), by reason (backlog, notices).',
      labelNames: ['reason'],
      registers,
    });
    this.rateLimited = new Counter({
      name: `${p}rate_limited_total`,
      help: 'Requests refused by a rate limit, by bucket and dimension (identity, address).',
      labelNames: ['bucket', 'dimension'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: `${p}queue_depth`,
      help: 'Undelivered messages held (all recipients), as of the last cleanup run.',
      registers,
    });
    this.storeLatency = new Histogram({
      name: `${p}store_duration_seconds`,
      help: 'Latency of message store operations (store, fetch, ack).',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.cleanupRows = new Counter({
      name: `${p}cleanup_deleted_rows_total`,
      help: 'Rows deleted by the cleanup job, by table.',
      labelNames: ['table'],
      registers,
    });
    if (options.metrics.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  handshake(ok: boolean): void {
    this.handshakes.inc({ result: ok ? 'ok' : 'failed' });
  }

  message(event: MessageEvent, count = 1): void {
    if (count > 0) this.messages.inc({ event }, count);
  }

  /** One `mail:sync` sent to a socket. */
  mailSync(reason: MailSyncReason): void {
    this.mailSyncs.inc({ reason });
  }

  limited(bucket: string, dimension: 'identity' | 'address'): void {
    this.rateLimited.inc({ bucket, dimension });
  }

  setQueueDepth(depth: number): void {
    this.queueDepth.set(depth);
  }

  cleaned(table: string, rows: number): void {
    if (rows > 0) this.cleanupRows.inc({ table }, rows);
  }

  /** Starts a latency timer; call the returned function when the operation ends. */
  time(operation: 'store' | 'fetch' | 'ack'): () => void {
    const end = this.storeLatency.startTimer({ operation });
    return () => {
      end();
    };
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
