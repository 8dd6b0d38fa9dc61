import { DDSketch, LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';
import type { GiveUpReason } from '../events.ts';

/** 1 % relative error on every quantile; 1,024 bins span 0.01 ms to well over 100 s, so memory is bounded. */
const SKETCH = { relativeAccuracy: 0.01, binLimit: 1_024 } as const;

/**
 * The part of a DDSketch this module uses. Declared here so that meshfetch's own type declarations
 * never name the library's, which do not type-check in a project without skipLibCheck.
 */
export interface Sketch {
  readonly count: number;
  accept(value: number): void;
  getValueAtQuantile(quantile: number): number;
  merge(other: Sketch): void;
  toProto(): Uint8Array;
}

export function newSketch(): Sketch {
  return new LogCollapsingLowestDenseDDSketch(SKETCH) as Sketch;
}

/** The DDSketch protobuf encoding, base64: what another process decodes and merges. */
export function encodeSketch(sketch: Sketch): string {
  return Buffer.from(sketch.toProto()).toString('base64');
}

export function decodeSketch(encoded: string): Sketch {
  return DDSketch.fromProto(Buffer.from(encoded, 'base64')) as Sketch;
}

/** A sketch's positive bins as plain numbers: far smaller than the protobuf, and merged without decoding one. */
export interface SketchBins {
  /** Values of 0. */
  zero: number;
  /** The key of counts[0]; keys are consecutive. */
  key: number;
  counts: number[];
}

/** The parts of the library's sketch that bins are read from and added to (durations are never negative). */
interface SketchInternals {
  count: number;
  zeroCount: number;
  store: { bins: number[]; offset: number; minKey: number; maxKey: number; count: number; add(key: number, weight: number): void };
}

export function sketchBins(sketch: Sketch): SketchBins {
  const { zeroCount, store } = sketch as unknown as SketchInternals;
  if (store.count === 0) return { zero: zeroCount, key: 0, counts: [] };
  const counts: number[] = [];
  for (let key = store.minKey; key <= store.maxKey; key++) counts.push(store.bins[key - store.offset] ?? 0);
  return { zero: zeroCount, key: store.minKey, counts };
}

/** Adds bins (from sketchBins of a sketch with the same mapping) into `sketch`. */
export function addBins(sketch: Sketch, bins: SketchBins): void {
  const internals = sketch as unknown as SketchInternals;
  let total = bins.zero;
  for (let i = 0; i < bins.counts.length; i++) {
    const count = bins.counts[i]!;
    if (count === 0) continue;
    internals.store.add(bins.key + i, count);
    total += count;
  }
  internals.zeroCount += bins.zero;
  internals.count += total;
}

/** Counts for one destination (service and route) over some stretch of time. Adding two tallies merges them. */
export interface Tally {
  /** Logical calls, as the caller saw them (retries included in one call). */
  requests: number;
  successes: number;
  failures: number;
  /** Calls the caller aborted: counted in requests, not in the success rate. */
  cancelled: number;
  /** Attempts on the wire, retries and hedged copies included. */
  attempts: number;
  attemptSuccesses: number;
  attemptFailures: number;
  /** Retries sent (not counting first attempts or hedges). */
  retries: number;
  /** Hedged copies sent. */
  hedges: number;
  /** Times a retry or hedge was wanted but the retry budget had nothing left. */
  budgetExhausted: number;
  /** Calls refused by a concurrency or rate limit. */
  limited: number;
  /** Attempts answered by an injected abort (policy `fault`): nothing was sent; not the upstream's failures. */
  injectedAborts: number;
  /** Attempts held back by an injected delay (policy `fault`). */
  injectedDelays: number;
  /** Calls that ended without a further attempt, by reason. */
  giveUps: Partial<Record<GiveUpReason, number>>;
  /** Call durations in ms; created on the first call. */
  latency: Sketch | undefined;
}

export function newTally(): Tally {
  return {
    requests: 0, successes: 0, failures: 0, cancelled: 0,
    attempts: 0, attemptSuccesses: 0, attemptFailures: 0,
    retries: 0, hedges: 0, budgetExhausted: 0, limited: 0, injectedAborts: 0, injectedDelays: 0,
    giveUps: {}, latency: undefined,
  };
}

/** Every count of a tally: what adding and merging sum. */
export const COUNTS = [
  'requests', 'successes', 'failures', 'cancelled', 'attempts', 'attemptSuccesses', 'attemptFailures',
  'retries', 'hedges', 'budgetExhausted', 'limited', 'injectedAborts', 'injectedDelays',
] as const;

/** Adds `from` into `into`: counts sum, latency sketches merge. */
export function addTally(into: Tally, from: Tally): Tally {
  for (const key of COUNTS) into[key] += from[key];
  for (const [why, n] of Object.entries(from.giveUps) as [GiveUpReason, number][]) into.giveUps[why] = (into.giveUps[why] ?? 0) + n;
  if (from.latency && from.latency.count > 0) {
    into.latency ??= newSketch();
    into.latency.merge(from.latency);
  }
  return into;
}
