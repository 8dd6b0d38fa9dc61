import type { CircuitState } from '../events.ts';
import type { MeshStatsSnapshot } from './stats.ts';
import { encodeBins } from './report-bins.ts';
import { decodeSketch, sketchBins } from './tally.ts';
import type { SketchBins, Tally } from './tally.ts';

/** The report format this version sends and the control plane takes; any other is refused, naming `v`. */
export const REPORT_VERSION = 2;

/** A report names at most this many edges, the busiest. */
export const MAX_REPORT_EDGES = 512;
/** A report's JSON is at most this many bytes (fewer edges if need be); the control plane refuses a larger body with 413. */
export const MAX_REPORT_BYTES = 512 * 1_024;
/** The most JSON an edge takes besides its latency: names escaped at worst, nine counts of 13 digits, keys. */
const edgeBytes = (edge: EdgeReport): number => 6 * (edge.to.length + edge.route.length) + 250 + (edge.latency?.length ?? 0);

/** The counts of an edge, in the order of `EdgeReport.counts`. */
export const EDGE_COUNTS = ['requests', 'successes', 'failures', 'cancelled', 'attempts', 'attemptSuccesses', 'attemptFailures', 'retries', 'hedges'] as const;

/** One edge (caller → destination service, route) as a client reports it: counts and the latency sketch, nothing derived. */
export interface EdgeReport {
  to: string;
  route: string;
  breaker: CircuitState;
  /** Milliseconds the counts cover. */
  windowMs: number;
  /** One whole number per EDGE_COUNTS name, in that order. */
  counts: number[];
  /** The latency sketch's bins (ms) in the form of report-bins.ts; null with no calls. */
  latency: string | null;
}

/** The body of POST /v1/reports: one mesh instance's figures over its stats window. */
export interface StatsReport {
  v: typeof REPORT_VERSION;
  service: string;
  instance: string;
  edges: EdgeReport[];
}

/** An edge's figures before they are put in the report's form. */
export type EdgeFigures = Pick<Tally, (typeof EDGE_COUNTS)[number]> & Pick<EdgeReport, 'to' | 'route' | 'breaker' | 'windowMs'> & { latency: SketchBins | null };

export function edgeReport(edge: EdgeFigures): EdgeReport {
  return {
    to: edge.to, route: edge.route, breaker: edge.breaker, windowMs: edge.windowMs,
    counts: EDGE_COUNTS.map((name) => edge[name]),
    latency: edge.latency === null ? null : encodeBins(edge.latency),
  };
}

/**
 * The report of a stats snapshot: per route, edges that saw traffic or have a breaker not closed;
 * the busiest, as many as fit MAX_REPORT_EDGES and MAX_REPORT_BYTES.
 */
export function reportOf(snapshot: MeshStatsSnapshot, instance: string): StatsReport {
  const edges: EdgeFigures[] = [];
  for (const [to, service] of Object.entries(snapshot.services)) {
    for (const [route, f] of Object.entries(service.routes)) {
      if (f.requests === 0 && f.attempts === 0 && f.breaker === 'closed') continue;
      edges.push({ ...f, to, route, latency: f.sketch === null ? null : sketchBins(decodeSketch(f.sketch)) });
    }
  }
  edges.sort((a, b) => b.requests - a.requests).length = Math.min(edges.length, MAX_REPORT_EDGES);
  const reports: EdgeReport[] = [];
  let bytes = 1_024;
  for (const edge of edges.map(edgeReport)) {
    if ((bytes += edgeBytes(edge)) > MAX_REPORT_BYTES) break;
    reports.push(edge);
  }
  return { v: REPORT_VERSION, service: snapshot.caller, instance, edges: reports };
}
