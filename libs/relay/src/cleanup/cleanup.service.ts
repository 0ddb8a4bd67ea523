/**
 * Deletes what has expired: undelivered mail past its TTL, handshake replay nonces past their
 * window, and stale rate-limit counters.
 *
 * Bounded and lock-light: each statement deletes at most `cleanup.batchSize` rows, picked with
 * `FOR UPDATE SKIP LOCKED` and addressed by ctid (a TID scan), and commits on its own, so no lock
 * is held across batches and no row lock blocks a store, a fetch or an ack for long. Several nodes
 * may run it at the same moment: SKIP LOCKED hands each node different rows, and a run stops after
 * `cleanup.maxBatchesPerRun` statements per table, leaving the rest to the next run.
 *
 * Scheduled with a `cron` job at `cleanup.cron`, registered in @nestjs/schedule's SchedulerRegistry
 * (as 'usm-relay-cleanup') when the host has imported ScheduleModule. The relay does not import
 * ScheduleModule.forRoot() itself: a second instance would run every @Cron of the host twice.
 */
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { InjectRelayClock, RelayClock } from '../relay-clock.js';
import { RelayDatabase } from '../database/relay-database.js';
import { RELAY_CLEANUP_JOB, RELAY_OPTIONS, TABLES } from '../relay.constants.js';
import { RelayError } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';

/** Rows one cleanup run deleted, per table. */
export interface CleanupReport {
  mail: number;
  replayNonces: number;
  rateLimits: number;
  /** DELETE statements issued in all. */
  statements: number;
}

/** Which rows of a table have expired, given the cut-off parameter $1. */
const EXPIRED = {
  [TABLES.mail]: 'expires_at < $1',
  [TABLES.replayNonces]: 'expires_at < $1',
  // rate-limiter-flexible keeps `expire` in epoch milliseconds; NULL never expires (not used here).
  [TABLES.rateLimits]: 'expire < $1',
} as const;

/**
 * @example
 * // tests and tools: one run, now
 * const report = await app.get(RelayCleanupService).runOnce();
 */
@Injectable()
export class RelayCleanupService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('MessengerRelay');
  private readonly cleanup: ResolvedRelayOptions['cleanup'];
  private job: CronJob | undefined;
  private running: Promise<CleanupReport> | undefined;

  constructor(
    private readonly db: RelayDatabase,
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'cleanup'>,
    @InjectRelayClock() private readonly clock: RelayClock,
    private readonly metrics: RelayMetrics,
    @Optional() private readonly schedulerRegistry?: SchedulerRegistry,
  ) {
    this.cleanup = options.cleanup;
  }

  onApplicationBootstrap(): void {
    if (!this.cleanup.enabled) return;
    this.job = CronJob.from({ cronTime: this.cleanup.cron, onTick: () => this.tick(), start: false });
    if (this.schedulerRegistry && !this.schedulerRegistry.doesExist('cron', RELAY_CLEANUP_JOB)) {
      this.schedulerRegistry.addCronJob(RELAY_CLEANUP_JOB, this.job as never);
    }
    this.job.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.job) {
      await this.job.stop();
      if (this.schedulerRegistry?.doesExist('cron', RELAY_CLEANUP_JOB)) {
        this.schedulerRegistry.deleteCronJob(RELAY_CLEANUP_JOB);
      }
      this.job = undefined;
    }
    await this.running?.catch(() => undefined);
  }

  /** One cleanup run now, with the clock's time as the cut-off. Reports what it deleted. */
  async runOnce(): Promise<CleanupReport> {
    const now = this.clock.now();
    const report: CleanupReport = { mail: 0, replayNonces: 0, rateLimits: 0, statements: 0 };
    report.mail = await this.purge(TABLES.mail, new Date(now), report);
    report.replayNonces = await this.purge(TABLES.replayNonces, new Date(now), report);
    report.rateLimits = await this.purge(TABLES.rateLimits, now, report);
    this.metrics.message('expired', report.mail);
    this.metrics.cleaned(TABLES.mail, report.mail);
    this.metrics.cleaned(TABLES.replayNonces, report.replayNonces);
    this.metrics.cleaned(TABLES.rateLimits, report.rateLimits);
    const depth = await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM usm_mail`);
    this.metrics.setQueueDepth(Number(depth.rows[0]?.n ?? 0));
    return report;
  }

  /** The cron tick: one run at a time per node; failures are logged and retried next tick. */
  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = this.runOnce();
    try {
      const r = await this.running;
      if (r.mail + r.replayNonces + r.rateLimits > 0) {
        this.logger.log(
          `cleanup deleted ${r.mail} expired messages, ${r.replayNonces} replay nonces, ${r.rateLimits} rate-limit rows`,
        );
      }
    } catch (err) {
      this.logger.error(
        M.cleanupFailed(err instanceof RelayError && 'sqlState' in err ? String(err.sqlState) : 'n/a'),
      );
    } finally {
      this.running = undefined;
    }
  }

  private async purge(
    table: keyof typeof EXPIRED,
    cutoff: Date | number,
    report: CleanupReport,
  ): Promise<number> {
    let total = 0;
    for (let i = 0; i < this.cleanup.maxBatchesPerRun; i++) {
      const { rowCount } = await this.db.query(
        `DELETE FROM ${table}
          WHERE ctid = ANY(ARRAY(
                  SELECT ctid FROM ${table} WHERE ${EXPIRED[table]} LIMIT $2 FOR UPDATE SKIP LOCKED))`,
        [cutoff, this.cleanup.batchSize],
      );
      report.statements++;
      total += rowCount;
      if (rowCount < this.cleanup.batchSize) break;
    }
    return total;
  }
}
