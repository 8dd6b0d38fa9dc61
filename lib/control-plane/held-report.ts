import type { CircuitState } from '../events.ts';
import { EDGE_COUNTS } from '../telemetry/report.ts';

export const BREAKER_STATES: readonly CircuitState[] = ['closed', 'half-open', 'open'];

/** The columns of one edge in HeldReport.figures. */
export const WINDOW_MS = 0;
/** Index into BREAKER_STATES. */
export const BREAKER = 1;
/** The edge's latency bins are HeldReport.latency[LATENCY_START, LATENCY_END). */
export const LATENCY_START = 2;
export const LATENCY_END = 3;
/** EDGE_COUNTS[i] is at column FIRST_COUNT + i. */
export const FIRST_COUNT = 4;
export const COLUMNS = FIRST_COUNT + EDGE_COUNTS.length;

/**
 * One instance's latest report as the control plane holds it: a few objects whatever its size, so
 * that a thousand instances of twenty edges are a few megabytes and little for the GC to walk. Edge i
 * is `to[i]` / `route[i]`, its numbers `figures[i * COLUMNS …]`, its latency the varint bins as they
 * came on the wire (report-bins.ts), read only when figures are merged.
 */
export interface HeldReport {
  readonly service: string;
  readonly instance: string;
  readonly to: readonly string[];
  readonly route: readonly string[];
  readonly figures: Float64Array;
  readonly latency: Uint8Array;
}

/** Bytes a held report takes, near enough to bound the total held. */
export function heldBytes(report: HeldReport): number {
  let names = 0;
  for (let i = 0; i < report.to.length; i++) names += report.to[i]!.length + report.route[i]!.length;
  return 400 + 2 * names + 32 * report.to.length + report.figures.byteLength + report.latency.byteLength;
}

/** Calls over all the report's edges. */
export function totalRequests(report: HeldReport): number {
  let requests = 0;
  for (let row = FIRST_COUNT; row < report.figures.length; row += COLUMNS) requests += report.figures[row]!;
  return requests;
}
