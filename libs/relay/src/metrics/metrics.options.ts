/** The relay's Prometheus metrics (metrics.service.ts). */
export interface RelayMetricsOptions {
  /**
   * Prefix of every metric name.
   * @default 'usm_relay_'
   */
  prefix?: string;
  /**
   * Also collect prom-client's default process metrics into the relay's registry.
   * @default false
   */
  defaultMetrics?: boolean;
}
