import type { CircuitState } from '../events.ts';
import type { GoldenFigures } from './figures.ts';
import type { MeshStatsSnapshot } from './stats.ts';

/** One edge (caller → destination service, route) as a client reports it: counts and the latency sketch, nothing derived. */
export interface EdgeReport {
  to: string;
  route: string;
  requests: number;
  successes: number;
  failures: number;
  cancelled: number;
  attempts: number;
  attemptSuccesses: number;
  attemptFailures: number;
  retries: number;
  hedges: number;
  breaker: CircuitState;
  /** DDSketch protobuf, base64; null with no calls. */
  sketch: string | null;
  /** Milliseconds the counts cover. */
  windowMs: number;
}

/** The body of POST /v1/reports: one mesh instance's figures over its stats window. */
export interface StatsReport {
  service: string;
  instance: string;
  edges: EdgeReport[];
}

/** A report names at most this many edges (the busiest); a bound on its size whatever the traffic. */
export const MAX_REPORT_EDGES = 512;

export const EDGE_COUNTS = ['requests', 'successes', 'failures', 'cancelled', 'attempts', 'attemptSuccesses', 'attemptFailures', 'retries', 'hedges'] as const;

/** The report of a stats snapshot: per route, edges that saw traffic or have a breaker not closed. */
export function reportOf(snapshot: MeshStatsSnapshot, instance: string): StatsReport {
  const edges: EdgeReport[] = [];
  for (const [to, service] of Object.entries(snapshot.services)) {
    for (const [route, f] of Object.entries(service.routes)) {
      if (f.requests === 0 && f.attempts === 0 && f.breaker === 'closed') continue;
      edges.push({
        to, route,
        requests: f.requests, successes: f.successes, failures: f.failures, cancelled: f.cancelled,
        attempts: f.attempts, attemptSuccesses: f.attemptSuccesses, attemptFailures: f.attemptFailures,
        retries: f.retries, hedges: f.hedges, breaker: f.breaker, sketch: f.sketch, windowMs: f.windowMs,
      });
    }
  }
  if (edges.length > MAX_REPORT_EDGES) edges.sort((a, b) => b.requests - a.requests).length = MAX_REPORT_EDGES;
  return { service: snapshot.caller, instance, edges };
}

/** An edge's counts as golden figures (the derived fields left for mergeFigures to compute), so that reports merge. */
export function figuresOfEdge(edge: EdgeReport): GoldenFigures {
  return {
    requests: edge.requests, rate: edge.requests / (edge.windowMs / 1_000),
    successes: edge.successes, failures: edge.failures, cancelled: edge.cancelled, successRate: null,
    attempts: edge.attempts, attemptSuccesses: edge.attemptSuccesses, attemptFailures: edge.attemptFailures, attemptSuccessRate: null,
    latency: null, retries: edge.retries, hedges: edge.hedges, budgetExhausted: 0, limited: 0, giveUps: {},
    breaker: edge.breaker, sketch: edge.sketch, windowMs: edge.windowMs,
  };
}
