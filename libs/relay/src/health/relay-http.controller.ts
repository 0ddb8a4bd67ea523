/**
 * The relay's HTTP routes: a health check and Prometheus metrics. Hosts have their own routes, so
 * the paths are module extras (`http: { healthPath, metricsPath }`) and `http: false` mounts
 * nothing (use RelayHealthIndicator and RelayMetrics in your own controllers instead).
 */
import { Controller, Get, Header, type Type } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { Registry } from 'prom-client';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { RelayHealthIndicator } from './relay-health.indicator.js';

export interface RelayHttpOptions {
  /**
   * Path of the health check (terminus format; 503 when the relay's database does not answer).
   * @default 'health'
   */
  healthPath?: string;
  /**
   * Path of the Prometheus metrics (the relay's own registry only).
   * @default 'metrics'
   */
  metricsPath?: string;
}

export const RELAY_HTTP_DEFAULTS: Required<RelayHttpOptions> = {
  healthPath: 'health',
  metricsPath: 'metrics',
};

/** A controller class serving the relay's health and metrics at the given paths. */
export function createRelayHttpController(http: RelayHttpOptions): Type {
  const paths = { ...RELAY_HTTP_DEFAULTS, ...http };

  @Controller()
  class RelayHttpController {
    constructor(
      private readonly healthCheck: HealthCheckService,
      private readonly indicator: RelayHealthIndicator,
      private readonly relayMetrics: RelayMetrics,
    ) {}

    @Get(paths.healthPath)
    @HealthCheck()
    health() {
      return this.healthCheck.check([() => this.indicator.isHealthy()]);
    }

    @Get(paths.metricsPath)
    @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
    metrics(): Promise<string> {
      return this.relayMetrics.metrics();
    }
  }
  return RelayHttpController;
}
