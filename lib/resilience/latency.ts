import type { LayerDeps } from '../pipeline/layers.ts';
import { namedInPolicy, PerDestination } from '../pipeline/per-destination.ts';
import type { CallContext } from '../pipeline/types.ts';

const GROWTH = Math.log(1.2);
const BUCKETS = 80; // 1.2^80 ms ≈ 35 minutes
const MIN_SAMPLES = 20;
const DECAY_AT = 1_000;
const MAX_ROUTES_PER_SERVICE = 256;

/** A decaying log-scale histogram of one route's latencies; quantiles within ~10%. */
class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #total = 0;

  record(ms: number): void {
    const bucket = ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / GROWTH));
    this.#counts[bucket]!++;
    if (++this.#total >= DECAY_AT) {
      for (let i = 0; i < BUCKETS; i++) this.#counts[i]! /= 2;
      this.#total /= 2;
    }
  }

  quantile(q: number): number | undefined {
    if (this.#total < MIN_SAMPLES) return undefined;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= q * this.#total) return Math.ceil(1.2 ** i);
    }
    return Math.ceil(1.2 ** (BUCKETS - 1));
  }
}

type Destination = Pick<CallContext, 'service' | 'route' | 'policyInForce'>;

/**
 * Observed latency per (service, route), for hedging at the route's p95. Bounded: in services as
 * PerDestination says, and in routes per service (a route name may come from the caller).
 */
export class LatencyTracker {
  readonly #services: PerDestination<Map<string | undefined, LatencyHistogram>>;

  constructor(deps?: Pick<LayerDeps, 'onPolicy' | 'shutdown'>) {
    this.#services = new PerDestination(deps);
  }

  #histogram(ctx: Destination): LatencyHistogram {
    const { service } = ctx;
    const routes = this.#services.get(service) ?? this.#services.add(service, service, namedInPolicy(ctx), new Map());
    let histogram = routes.get(ctx.route);
    if (!histogram) {
      if (routes.size >= MAX_ROUTES_PER_SERVICE) routes.delete(routes.keys().next().value);
      routes.set(ctx.route, (histogram = new LatencyHistogram()));
    }
    return histogram;
  }

  record(ctx: Destination, ms: number): void {
    this.#histogram(ctx).record(ms);
  }

  /** The route's p95 in ms, or undefined until enough answers were seen. */
  p95(ctx: Destination): number | undefined {
    return this.#histogram(ctx).quantile(0.95);
  }
}
