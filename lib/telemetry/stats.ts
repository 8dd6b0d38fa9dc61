import type { CircuitState, MeshEvents } from '../events.ts';
import { describe, worstBreaker } from './figures.ts';
import type { GoldenFigures } from './figures.ts';
import { addTally, newSketch, newTally } from './tally.ts';
import type { Tally } from './tally.ts';
import { SlidingWindow } from './window.ts';

export type { GoldenFigures } from './figures.ts';

/** Golden figures for one destination service, and per route. */
export interface ServiceStats extends GoldenFigures {
  /** By route name; calls matching no named route are under UNNAMED_ROUTE. */
  routes: Record<string, GoldenFigures>;
}

export interface MeshStatsSnapshot {
  /** This service's name (the caller of every edge below). */
  readonly caller: string;
  /** The sliding window the figures cover, in ms. */
  readonly window: number;
  /** When the snapshot was taken (Date.now()). */
  readonly at: number;
  readonly services: Readonly<Record<string, Readonly<ServiceStats>>>;
}

export interface StatsOptions {
  readonly caller: string;
  /** Sliding window in ms (default 60 s). */
  readonly window?: number;
  /** Whether the policy in force names a service (as for every per-service state); others share a small bounded set. */
  readonly inPolicy: (service: string) => boolean;
}

/** The route key of calls that matched no named route. */
export const UNNAMED_ROUTE = '(unnamed)';
/** Where figures go once a bound is reached, so that memory stays bounded whatever names callers use. */
export const OTHER = '(other)';
/** Services not in policy that get their own figures; any more share OTHER. */
const MAX_UNLISTED_SERVICES = 16;
const MAX_ROUTES_PER_SERVICE = 128;

interface RouteEntry {
  readonly window: SlidingWindow;
  breaker: CircuitState;
}

/**
 * Golden metrics per destination service and route over a sliding window, fed by the mesh's events
 * (`call` and `attempt` from the telemetry layers; retry, hedge, budget, give-up, limit and breaker
 * events from the layers that decide them). Per call it increments counters and adds one value to a
 * DDSketch; quantiles are computed only when a snapshot is read. Memory is bounded: the services in
 * policy plus MAX_UNLISTED_SERVICES, each with at most MAX_ROUTES_PER_SERVICE routes, each a ring of
 * six tallies. No timers: windows turn on use.
 */
export class StatsCollector {
  readonly #services = new Map<string, Map<string, RouteEntry>>();
  readonly #options: StatsOptions;
  readonly #windowMs: number;
  readonly #disposers: (() => void)[];
  /** Services with their own figures that were not in policy when first seen. */
  readonly #unlisted = new Set<string>();

  constructor(events: MeshEvents, options: StatsOptions) {
    this.#options = options;
    this.#windowMs = options.window ?? 60_000;
    const count = (service: string, route: string | undefined): Tally => this.#route(service, route).window.current(Date.now());
    this.#disposers = [
      events.on('call', (e) => {
        const tally = count(e.service, e.route);
        tally.requests++;
        if (e.outcome === 'success') tally.successes++;
        else if (e.outcome === 'failure') tally.failures++;
        else tally.cancelled++;
        (tally.latency ??= newSketch()).accept(e.duration);
      }),
      events.on('attempt', (e) => {
        const tally = count(e.service, e.route);
        tally.attempts++;
        if (e.outcome === 'success') tally.attemptSuccesses++;
        else if (e.outcome === 'failure') tally.attemptFailures++;
      }),
      events.on('retry', (e) => void count(e.service, e.route).retries++),
      events.on('hedge', (e) => void count(e.service, e.route).hedges++),
      events.on('budgetExhausted', (e) => void count(e.service, e.route).budgetExhausted++),
      events.on('limited', (e) => void count(e.service, e.route).limited++),
      events.on('fault', (e) => {
        const tally = count(e.service, e.route);
        if (e.kind === 'abort') tally.injectedAborts++;
        else tally.injectedDelays++;
      }),
      events.on('giveUp', (e) => {
        const giveUps = count(e.service, e.route).giveUps;
        giveUps[e.why] = (giveUps[e.why] ?? 0) + 1;
      }),
      events.on('circuit', (e) => void (this.#route(e.service, e.route).breaker = e.state)),
    ];
  }

  #route(service: string, route: string | undefined): RouteEntry {
    let routes = this.#services.get(service);
    if (!routes) {
      if (service !== OTHER && !this.#options.inPolicy(service)) {
        if (this.#unlisted.size >= MAX_UNLISTED_SERVICES) return this.#route(OTHER, route);
        this.#unlisted.add(service);
      }
      this.#services.set(service, (routes = new Map()));
    }
    const key = route ?? UNNAMED_ROUTE;
    let entry = routes.get(key);
    if (!entry) {
      if (routes.size >= MAX_ROUTES_PER_SERVICE - 1 && key !== OTHER) return this.#route(service, OTHER);
      routes.set(key, (entry = { window: new SlidingWindow(this.#windowMs, Date.now()), breaker: 'closed' }));
    }
    return entry;
  }

  /** Figures over the window that ends now. Destinations idle for a whole window (breaker closed) are dropped. */
  snapshot(): MeshStatsSnapshot {
    const now = Date.now();
    const services: Record<string, ServiceStats> = {};
    for (const [service, routes] of this.#services) {
      const total = newTally();
      const routeFigures: Record<string, GoldenFigures> = {};
      let covered = 0;
      for (const [name, entry] of routes) {
        if (entry.window.idle(now) && entry.breaker === 'closed') {
          routes.delete(name);
          continue;
        }
        const tally = entry.window.sum(now);
        const coveredMs = entry.window.coveredMs(now);
        covered = Math.max(covered, coveredMs);
        routeFigures[name] = describe(tally, coveredMs, entry.breaker);
        addTally(total, tally);
      }
      if (routes.size === 0) {
        this.#services.delete(service);
        this.#unlisted.delete(service);
        continue;
      }
      const breaker = worstBreaker(Object.values(routeFigures).map((f) => f.breaker));
      services[service] = { ...describe(total, covered, breaker), routes: routeFigures };
    }
    return { caller: this.#options.caller, window: this.#windowMs, at: now, services };
  }

  /** Stops listening (mesh.close()). */
  close(): void {
    for (const dispose of this.#disposers) dispose();
  }
}
