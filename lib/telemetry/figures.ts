import type { CircuitState } from '../events.ts';
import { addTally, COUNTS, decodeSketch, encodeSketch, newTally } from './tally.ts';
import type { Tally } from './tally.ts';

/** Golden metrics for one destination (a service, or one of its routes) over the stats window: the tally's counts, and what is read off them. */
export interface GoldenFigures extends Omit<Tally, 'latency'> {
  /** Calls per second over the window. */
  rate: number;
  /** After retries: what the caller saw (successes / (successes + failures)); null with no calls. */
  successRate: number | null;
  /** Per attempt: what the upstream did; null with no attempts. */
  attemptSuccessRate: number | null;
  /** Call latency quantiles in ms (DDSketch, 1 % relative error); null with no calls. */
  latency: { p50: number; p95: number; p99: number } | null;
  /** The circuit breaker's state (the worst of the service's routes at service level). */
  breaker: CircuitState;
  /** The latency sketch, DDSketch protobuf in base64, so that figures from many processes merge exactly. */
  sketch: string | null;
  /** Milliseconds the figures cover. */
  windowMs: number;
}

const rate = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole);

const BREAKER_RANK: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

export function worstBreaker(states: Iterable<CircuitState>): CircuitState {
  let worst: CircuitState = 'closed';
  for (const state of states) if (BREAKER_RANK[state] > BREAKER_RANK[worst]) worst = state;
  return worst;
}

/** Golden figures from a tally covering `windowMs`. The only place quantiles are computed: on read, never per call. */
export function describe(tally: Tally, windowMs: number, breaker: CircuitState): GoldenFigures {
  const { latency } = tally;
  const counted = latency !== undefined && latency.count > 0;
  return {
    requests: tally.requests,
    rate: tally.requests / (windowMs / 1_000),
    successes: tally.successes,
    failures: tally.failures,
    cancelled: tally.cancelled,
    successRate: rate(tally.successes, tally.successes + tally.failures),
    attempts: tally.attempts,
    attemptSuccesses: tally.attemptSuccesses,
    attemptFailures: tally.attemptFailures,
    attemptSuccessRate: rate(tally.attemptSuccesses, tally.attemptSuccesses + tally.attemptFailures),
    latency: counted
      ? { p50: latency.getValueAtQuantile(0.5), p95: latency.getValueAtQuantile(0.95), p99: latency.getValueAtQuantile(0.99) }
      : null,
    retries: tally.retries,
    hedges: tally.hedges,
    budgetExhausted: tally.budgetExhausted,
    limited: tally.limited,
    injectedAborts: tally.injectedAborts,
    injectedDelays: tally.injectedDelays,
    giveUps: { ...tally.giveUps },
    breaker,
    sketch: counted ? encodeSketch(latency) : null,
    windowMs,
  };
}

/** The tally a set of figures was described from (the sketch decoded), so that figures can be added. */
function tallyOf(figures: GoldenFigures): Tally {
  const tally = newTally();
  // ?? 0: figures from a process that predates a count.
  for (const key of COUNTS) tally[key] = figures[key] ?? 0;
  tally.giveUps = { ...figures.giveUps };
  tally.latency = figures.sketch === null ? undefined : decodeSketch(figures.sketch);
  return tally;
}

/**
 * Merges figures for the same destination from several processes (or several routes into their
 * service): counts add, sketches merge, so the merged quantiles are as exact as each process's own.
 * Rates add, as the processes' calls do; the breaker is the worst reported.
 */
export function mergeFigures(all: readonly GoldenFigures[]): GoldenFigures {
  const total = newTally();
  let windowMs = 0;
  let rateSum = 0;
  for (const figures of all) {
    addTally(total, tallyOf(figures));
    windowMs = Math.max(windowMs, figures.windowMs);
    rateSum += figures.rate;
  }
  const merged = describe(total, windowMs || 1_000, worstBreaker(all.map((f) => f.breaker)));
  merged.rate = rateSum;
  return merged;
}
