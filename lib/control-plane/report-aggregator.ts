import type { GoldenFigures } from '../telemetry/figures.ts';
import { OTHER } from '../telemetry/stats.ts';
import { EdgeMerger } from './edge-merger.ts';
import { heldBytes } from './held-report.ts';
import type { HeldReport } from './held-report.ts';

/** Merged figures for one edge (caller → destination), or one route of it when `route` is set. */
export interface EdgeStats extends Omit<GoldenFigures, 'sketch' | 'giveUps' | 'budgetExhausted' | 'limited'> {
  from: string;
  to: string;
  route?: string;
  /** Instances whose reports were merged into these figures. */
  instances: number;
}

export interface StatsQuery {
  /** Only instances whose latest report arrived within this many ms count. */
  readonly window: number;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly route?: string | undefined;
}

export interface StatsView {
  /** The query's window, in ms. */
  readonly window: number;
  readonly at: number;
  /** Instances counted. */
  readonly instances: number;
  /** Per edge, busiest first. */
  readonly edges: EdgeStats[];
  /** Per edge and route, busiest first. */
  readonly routes: EdgeStats[];
  /** Per destination route, merged over every caller, busiest first. */
  readonly serviceRoutes: RouteStats[];
}

/** One route of a destination service, merged over all its callers. */
export type RouteStats = Omit<EdgeStats, 'from' | 'route'> & { route: string };

export interface AggregatorOptions {
  /** An instance whose latest report is older than this is forgotten (ms; default 30 s, three missed reports). */
  readonly ttl?: number;
  /** Instances kept at once (default 10,000); past it the one heard from longest ago is forgotten. */
  readonly maxInstances?: number;
  /** Bytes of reports kept at once (default 128 MiB, some 20,000 instances of 20 edges); past it the instance heard from longest ago is forgotten. */
  readonly maxBytes?: number;
  readonly now?: () => number;
}

/**
 * Caller, destination and route rows one view makes, at most: the held reports are bounded by bytes,
 * but 512 routes of their own in each could make a view of millions of rows. Past it, new rows fold
 * into one (other) → (other) (other) row, as a client folds names past its own bounds.
 */
export const MAX_VIEW_ROUTES = 5_000;
const OVERFLOW_KEY = `${OTHER}\n${OTHER}\n${OTHER}`;

function sameNames(a: HeldReport, b: HeldReport): boolean {
  if (a.to.length !== b.to.length || a.service !== b.service) return false;
  for (let i = 0; i < a.to.length; i++) if (a.to[i] !== b.to[i] || a.route[i] !== b.route[i]) return false;
  return true;
}

/** The merged figures as /v1/stats shows them. */
function figuresOf(merger: EdgeMerger): Omit<EdgeStats, 'from' | 'to' | 'route'> {
  const { sketch: _sketch, giveUps: _giveUps, budgetExhausted: _budget, limited: _limited, ...merged } = merger.figures();
  return { ...merged, instances: merger.instances };
}

interface Group {
  readonly from: string | undefined;
  readonly to: string;
  readonly route: string | undefined;
  readonly merger: EdgeMerger;
}

/** A route group, with the groups its figures roll up into. */
interface RouteGroup extends Group {
  readonly edge: Group;
  readonly serviceRoute: Group;
}

interface Held {
  readonly report: HeldReport;
  readonly receivedAt: number;
  readonly bytes: number;
}

/**
 * The latest report of every live instance, merged on read into per-edge and per-route figures.
 * A report covers its instance's whole stats window, so the latest one replaces the one before; an
 * instance silent for `ttl` ages out. The instances map is kept in order of arrival, so ageing out
 * and eviction take from its front: no timer, and memory bounded by instances and by bytes. Taking a
 * report in only checks and stores it; bins are added up only when figures are read, once per
 * caller, destination and route, and those sums roll up into the per-edge and per-route figures.
 */
export class ReportAggregator {
  readonly #held = new Map<string, Held>();
  readonly #ttl: number;
  readonly #maxInstances: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #bytes = 0;

  constructor(options: AggregatorOptions = {}) {
    this.#ttl = options.ttl ?? 30_000;
    this.#maxInstances = options.maxInstances ?? 10_000;
    this.#maxBytes = options.maxBytes ?? 128 * 2 ** 20;
    this.#now = options.now ?? Date.now;
  }

  get ttl(): number {
    return this.#ttl;
  }

  ingest(report: HeldReport): void {
    const now = this.#now();
    const previous = this.#held.get(report.instance);
    // An instance reports the same edges time after time: hold its names once, so that the ones just
    // parsed die young instead of being copied into the old generation every report.
    if (previous && sameNames(previous.report, report)) report = { ...report, to: previous.report.to, route: previous.report.route };
    this.#forget(report.instance);
    this.#expire(now);
    const held: Held = { report, receivedAt: now, bytes: heldBytes(report) };
    while (this.#held.size > 0 && (this.#held.size >= this.#maxInstances || this.#bytes + held.bytes > this.#maxBytes)) this.#forget(this.#held.keys().next().value!);
    this.#held.set(report.instance, held);
    this.#bytes += held.bytes;
  }

  /** Instances heard from within the ttl. */
  get size(): number {
    this.#expire(this.#now());
    return this.#held.size;
  }

  /** Bytes of the reports held, about. */
  get bytes(): number {
    return this.#bytes;
  }

  view(query: StatsQuery): StatsView {
    const now = this.#now();
    this.#expire(now);
    const routeGroups = new Map<string, RouteGroup>();
    const edgeGroups = new Map<string, Group>();
    const serviceRouteGroups = new Map<string, Group>();
    const groupOf = (groups: Map<string, Group>, key: string, from: string | undefined, to: string, route: string | undefined): Group => {
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { from, to, route, merger: new EdgeMerger() }));
      return group;
    };
    let counted = 0;
    for (const { report, receivedAt } of this.#held.values()) {
      if (receivedAt < now - query.window) continue;
      const { service: from, to: tos, route: routes } = report;
      if (query.from !== undefined && from !== query.from) continue;
      counted++;
      for (let i = 0; i < tos.length; i++) {
        const to = tos[i]!;
        const route = routes[i]!;
        if (query.to !== undefined && to !== query.to) continue;
        if (query.route !== undefined && route !== query.route) continue;
        let key = `${from}\n${to}\n${route}`;
        let group = routeGroups.get(key);
        if (!group && routeGroups.size >= MAX_VIEW_ROUTES) group = routeGroups.get((key = OVERFLOW_KEY));
        if (!group) {
          const [f, t, r] = key === OVERFLOW_KEY ? [OTHER, OTHER, OTHER] : [from, to, route];
          const edge = groupOf(edgeGroups, `${f}\n${t}`, f, t, undefined);
          const serviceRoute = groupOf(serviceRouteGroups, `${t}\n${r}`, undefined, t, r);
          routeGroups.set(key, (group = { from: f, to: t, route: r, merger: new EdgeMerger(), edge, serviceRoute }));
        }
        group.merger.addEdge(report, i);
        group.merger.countInstance(report);
        group.edge.merger.countInstance(report);
        group.serviceRoute.merger.countInstance(report);
      }
    }
    for (const { merger, edge, serviceRoute } of routeGroups.values()) {
      edge.merger.addMerger(merger);
      serviceRoute.merger.addMerger(merger);
    }
    const busiest = (a: { requests: number; to: string }, b: { requests: number; to: string }): number => b.requests - a.requests || a.to.localeCompare(b.to);
    return {
      window: query.window,
      at: now,
      instances: counted,
      edges: [...edgeGroups.values()].map((g) => ({ from: g.from!, to: g.to, ...figuresOf(g.merger) })).sort(busiest),
      routes: [...routeGroups.values()].map((g) => ({ from: g.from!, to: g.to, route: g.route!, ...figuresOf(g.merger) })).sort(busiest),
      serviceRoutes: [...serviceRouteGroups.values()].map((g) => ({ to: g.to, route: g.route!, ...figuresOf(g.merger) })).sort(busiest),
    };
  }

  #forget(instance: string): void {
    const held = this.#held.get(instance);
    if (!held) return;
    this.#held.delete(instance);
    this.#bytes -= held.bytes;
  }

  #expire(now: number): void {
    for (const [instance, held] of this.#held) {
      if (held.receivedAt >= now - this.#ttl) break;
      this.#forget(instance);
    }
  }
}
