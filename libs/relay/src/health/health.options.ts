/** The health indicator (relay-health.indicator.ts). */
export interface RelayHealthOptions {
  /**
   * Database ping timeout of the health indicator.
   * @default 1_000
   */
  timeoutMs?: number;
}
