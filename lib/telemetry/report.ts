import type { CircuitState } from '../events.ts';
import { describe, worstBreaker } from './figures.ts';
import type { GoldenFigures } from './figures.ts';
import type { MeshStatsSnapshot } from './stats.ts';
import { addBins, decodeSketch, newSketch, newTally, sketchBins } from './tally.ts';
import type { SketchBins, Tally } from './tally.ts';

/** One edge (caller → destination service, route) as a client reports it: counts and the latency sketch, nothing derived. */
export interface EdgeReport extends Pick<Tally, (typeof EDGE_COUNTS)[number]> {
  to: string;
  route: string;
  breaker: CircuitState;
  /** The latency sketch's bins (ms); null with no calls. */
  latency: SketchBins | null;
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
        retries: f.retries, hedges: f.hedges, breaker: f.breaker, windowMs: f.windowMs,
        latency: f.sketch === null ? null : sketchBins(decodeSketch(f.sketch)),
      });
    }
  }
  if (edges.length > MAX_REPORT_EDGES) edges.sort((a, b) => b.requests - a.requests).length = MAX_REPORT_EDGES;
  return { service: snapshot.caller, instance, edges };
}

/** Bin keys a report may carry: 1 %-accuracy keys of values from 1e-9 ms to 1e12 ms lie well within ±this. */
export const MAX_BIN_KEY = 5_000;

/**
 * Edges of the same destination from many reports, merged: counts add, rates add, and bins add into
 * one flat array by key (a plain addition each), put into a sketch once when the figures are read.
 */
export class EdgeMerger {
  readonly #tally: Tally = newTally();
  #bins: Float64Array | undefined;
  #zero = 0;
  #rate = 0;
  #windowMs = 0;
  readonly #breakers: CircuitState[] = [];

  add(edge: EdgeReport): void {
    for (const name of EDGE_COUNTS) this.#tally[name] += edge[name];
    if (edge.latency) {
      const bins = (this.#bins ??= new Float64Array(2 * MAX_BIN_KEY + 1));
      const { key, counts } = edge.latency;
      for (let i = 0; i < counts.length; i++) bins[key + i + MAX_BIN_KEY]! += counts[i]!;
      this.#zero += edge.latency.zero;
    }
    this.#rate += edge.requests / (edge.windowMs / 1_000);
    this.#windowMs = Math.max(this.#windowMs, edge.windowMs);
    this.#breakers.push(edge.breaker);
  }

  figures(): GoldenFigures {
    if (this.#bins) {
      const counts = Array.from(this.#bins);
      addBins((this.#tally.latency = newSketch()), { zero: this.#zero, key: -MAX_BIN_KEY, counts });
    }
    const merged = describe(this.#tally, this.#windowMs || 1_000, worstBreaker(this.#breakers));
    merged.rate = this.#rate;
    return merged;
  }
}
