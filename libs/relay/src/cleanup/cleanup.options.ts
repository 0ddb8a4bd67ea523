/** The cleanup job (cleanup.service.ts): when it runs and how much one run deletes. */
export interface RelayCleanupOptions {
  /**
   * Run the cleanup cron job on this node. Safe on every node at once.
   * @default true
   */
  enabled?: boolean;
  /**
   * When to run it: a cron expression (six fields with seconds, or five).
   * @default '0 * * * * *' (every minute)
   */
  cron?: string;
  /**
   * Rows deleted per statement; each statement is its own short transaction.
   * @default 5_000
   */
  batchSize?: number;
  /**
   * Statements per table per run, so one run is bounded; the rest waits for the next run.
   * @default 200
   */
  maxBatchesPerRun?: number;
}
