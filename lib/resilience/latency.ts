const GROWTH = Math.log(1.2);
const BUCKETS = 80; // 1.2^80 ms ≈ 35 minutes
const MIN_SAMPLES = 20;
const DECAY_AT = 1_000;
const MAX_ROUTES = 1_024;

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

/** Observed latency per (service, route), for hedging at the route's p95. Bounded in routes. */
export class LatencyTracker {
  readonly #routes = new Map<string, LatencyHistogram>();

  #histogram(service: string, route: string | undefined): LatencyHistogram {
    const key = route === undefined ? service : `${service}\u0000${route}`;
    let histogram = this.#routes.get(key);
    if (!histogram) {
      if (this.#routes.size >= MAX_ROUTES) this.#routes.delete(this.#routes.keys().next().value!);
      this.#routes.set(key, (histogram = new LatencyHistogram()));
    }
    return histogram;
  }

  record(service: string, route: string | undefined, ms: number): void {
    this.#histogram(service, route).record(ms);
  }

  /** The route's p95 in ms, or undefined until enough answers were seen. */
  p95(service: string, route: string | undefined): number | undefined {
    return this.#histogram(service, route).quantile(0.95);
  }
}
