import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ReportAggregator } from './report-aggregator.ts';

/** Series are per edge (from, to): never per instance or route, and at most this many edges, the busiest. */
const MAX_EDGES = 500;

/**
 * The mesh's golden metrics, merged from clients' reports, on the control plane's registry: read
 * from the aggregator when scraped, so a Grafana user needs no OTel collector. Values cover each
 * client's stats window (gauges, not counters: a report is a window, not a running total).
 */
export function registerAggregatedMetrics(registry: Registry, aggregator: ReportAggregator): void {
  const labelNames = ['from', 'to'] as const;
  const gauge = (name: string, help: string, extra: readonly string[] = []) =>
    new Gauge({ name: `meshfetch_mesh_${name}`, help, labelNames: [...labelNames, ...extra], registers: [registry] });
  // Registered first: the registry collects in order, so this fills the gauges below before they are read.
  new Gauge({
    name: 'meshfetch_mesh_reporting_instances',
    help: 'Instances whose reports are held',
    registers: [registry],
    collect() {
      this.set(aggregator.size);
      const edges = aggregator.view({ window: aggregator.ttl }).edges.slice(0, MAX_EDGES);
      for (const g of [requests, rate, success, attemptSuccess, retries, latency, breakerOpen, instances]) g.reset();
      for (const e of edges) {
        const labels = { from: e.from, to: e.to };
        requests.set(labels, e.requests);
        rate.set(labels, e.rate);
        if (e.successRate !== null) success.set(labels, e.successRate);
        if (e.attemptSuccessRate !== null) attemptSuccess.set(labels, e.attemptSuccessRate);
        retries.set(labels, e.retries);
        breakerOpen.set(labels, e.breaker === 'closed' ? 0 : 1);
        instances.set(labels, e.instances);
        if (e.latency) for (const [q, v] of [['0.5', e.latency.p50], ['0.95', e.latency.p95], ['0.99', e.latency.p99]] as const) latency.set({ ...labels, quantile: q }, v);
      }
    },
  });
  const requests = gauge('requests', 'Calls in the window, merged over instances');
  const rate = gauge('request_rate', 'Calls per second');
  const success = gauge('success_ratio', 'Share of calls that succeeded after retries');
  const attemptSuccess = gauge('attempt_success_ratio', 'Share of attempts that succeeded');
  const retries = gauge('retries', 'Retries sent in the window');
  const latency = gauge('latency_milliseconds', 'Call latency quantiles (DDSketch, 1 % relative error)', ['quantile']);
  const breakerOpen = gauge('breaker_open', '1 when some route of the edge has its breaker open or half-open');
  const instances = gauge('edge_instances', 'Instances reporting the edge');
  new Gauge({
    name: 'meshfetch_mesh_report_bytes',
    help: 'Bytes of reports held (about); past 128 MiB the instance heard from longest ago is forgotten',
    registers: [registry],
    collect() {
      this.set(aggregator.bytes);
    },
  });
}
