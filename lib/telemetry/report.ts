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
/**
 * Reports travel as lines of one long POST per mesh and replica (`content-type: application/x-ndjson`),
 * one report per line, the way Envoy streams load reports to its management server: the control
 * plane takes each report in as its line ends and answers once, when the stream ends, instead of
 * once per report (bench/reports.ts: half the control plane's CPU).
 */
export const REPORT_STREAM_TYPE = 'application/x-ndjson';
/**
 * A mesh ends its stream with the last report due before it is this old, and opens a new one for the
 * next: thirty reports a stream at the default interval. Each stream costs the control plane about
 * what a request per report did (an answer, a request to parse); at 1,000 meshes, six reports a
 * stream left 0.7 % of a core in stream ends, thirty leave 0.1 %.
 */
export const REPORT_STREAM_MAX_AGE_MS = 300_000;
/** The control plane cuts a stream that completes no report this long: bytes that end no report do not hold one open. */
export const REPORT_STREAM_IDLE_MS = 120_000;
/** A mesh reporting less often than this sends each report as a request of its own: half the idle limit, so a timer late by up to this much does not get its stream cut. */
export const REPORT_STREAM_LONGEST_INTERVAL_MS = REPORT_STREAM_IDLE_MS / 2;
/** The most JSON an edge takes besides its latency: names escaped at worst, nine counts of 13 digits, keys. */
const edgeBytes = (edge: EdgeReport): number => 6 * (edge[0].length + edge[1].length) + 200 + (edge[13]?.length ?? 0);

/** The counts of an edge. */
export const EDGE_COUNTS = ['requests', 'successes', 'failures', 'cancelled', 'attempts', 'attemptSuccesses', 'attemptFailures', 'retries', 'hedges'] as const;

/** What each place of an edge's array holds. */
export const EDGE_FIELDS = ['to', 'route', 'breaker', 'windowMs', ...EDGE_COUNTS, 'latency'] as const;
/** Where the counts start in an edge's array; its latency is last. */
export const FIRST_COUNT_FIELD = 4;

/**
 * One edge (caller → destination service, route) as a client reports it: counts and the latency
 * sketch, nothing derived. An array rather than an object: a report of many edges does not repeat
 * fourteen key names per edge, and the control plane parses it in two thirds of the time.
 */
export type EdgeReport = [
  to: string,
  route: string,
  breaker: CircuitState,
  /** Milliseconds the counts cover. */
  windowMs: number,
  requests: number,
  successes: number,
  failures: number,
  cancelled: number,
  attempts: number,
  attemptSuccesses: number,
  attemptFailures: number,
  retries: number,
  hedges: number,
  /** The latency sketch's bins (ms) in the form of report-bins.ts; null with no calls. */
  latency: string | null,
];

/** The body of POST /v1/reports: one mesh instance's figures over its stats window. */
export interface StatsReport {
  v: typeof REPORT_VERSION;
  service: string;
  instance: string;
  edges: EdgeReport[];
}

/** An edge's figures before they are put in the report's form. */
export interface EdgeFigures extends Pick<Tally, (typeof EDGE_COUNTS)[number]> {
  to: string;
  route: string;
  breaker: CircuitState;
  windowMs: number;
  latency: SketchBins | null;
}

export function edgeReport(e: EdgeFigures): EdgeReport {
  const latency = e.latency === null ? null : encodeBins(e.latency);
  return [e.to, e.route, e.breaker, e.windowMs, e.requests, e.successes, e.failures, e.cancelled, e.attempts, e.attemptSuccesses, e.attemptFailures, e.retries, e.hedges, latency];
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
