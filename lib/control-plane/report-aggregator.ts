import type { GoldenFigures } from '../telemetry/figures.ts';
import { EdgeMerger } from '../telemetry/report.ts';
import type { EdgeReport, StatsReport } from '../telemetry/report.ts';

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
  readonly now?: () => number;
}

interface Group {
  readonly from: string | undefined;
  readonly to: string;
  readonly route: string | undefined;
  readonly merger: EdgeMerger;
  readonly instances: Set<string>;
}

interface Held {
  readonly service: string;
  readonly receivedAt: number;
  readonly edges: readonly EdgeReport[];
}

/**
 * The latest report of every live instance, merged on read into per-edge and per-route figures.
 * A report covers its instance's whole stats window, so the latest one replaces the one before; an
 * instance silent for `ttl` ages out. The instances map is kept in order of arrival, so ageing out
 * and eviction take from its front. Latency bins are added into sketches only on read.
 */
export class ReportAggregator {
  readonly #held = new Map<string, Held>();
  readonly #ttl: number;
  readonly #maxInstances: number;
  readonly #now: () => number;

  constructor(options: AggregatorOptions = {}) {
    this.#ttl = options.ttl ?? 30_000;
    this.#maxInstances = options.maxInstances ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  get ttl(): number {
    return this.#ttl;
  }

  ingest(report: StatsReport): void {
    const now = this.#now();
    this.#held.delete(report.instance);
    if (this.#held.size >= this.#maxInstances) this.#held.delete(this.#held.keys().next().value!);
    this.#held.set(report.instance, { service: report.service, receivedAt: now, edges: report.edges });
  }

  /** Instances heard from within the ttl. */
  get size(): number {
    this.#expire(this.#now());
    return this.#held.size;
  }

  view(query: StatsQuery): StatsView {
    const now = this.#now();
    this.#expire(now);
    const byEdge = new Map<string, Group>();
    const add = (groupKey: string, from: string | undefined, to: string, route: string | undefined, instance: string, edge: EdgeReport): void => {
      let group = byEdge.get(groupKey);
      if (!group) byEdge.set(groupKey, (group = { from, to, route, merger: new EdgeMerger(), instances: new Set() }));
      group.merger.add(edge);
      group.instances.add(instance);
    };
    const counted = new Set<string>();
    for (const [instance, held] of this.#held) {
      if (held.receivedAt < now - query.window) continue;
      if (query.from !== undefined && held.service !== query.from) continue;
      counted.add(instance);
      for (const edge of held.edges) {
        if (query.to !== undefined && edge.to !== query.to) continue;
        if (query.route !== undefined && edge.route !== query.route) continue;
        add(`${held.service}\n${edge.to}`, held.service, edge.to, undefined, instance, edge);
        add(`${held.service}\n${edge.to}\n${edge.route}`, held.service, edge.to, edge.route, instance, edge);
        add(`\n${edge.to}\n${edge.route}`, undefined, edge.to, edge.route, instance, edge);
      }
    }
    const edges: EdgeStats[] = [];
    const routes: EdgeStats[] = [];
    const serviceRoutes: RouteStats[] = [];
    for (const { from, to, route, merger, instances } of byEdge.values()) {
      const { sketch: _sketch, giveUps: _giveUps, budgetExhausted: _budget, limited: _limited, ...merged } = merger.figures();
      if (from === undefined) serviceRoutes.push({ to, route: route!, ...merged, instances: instances.size });
      else if (route === undefined) edges.push({ from, to, ...merged, instances: instances.size });
      else routes.push({ from, to, route, ...merged, instances: instances.size });
    }
    const busiest = (a: { requests: number; to: string }, b: { requests: number; to: string }): number => b.requests - a.requests || a.to.localeCompare(b.to);
    const view: StatsView = { window: query.window, at: now, instances: counted.size, edges: edges.sort(busiest), routes: routes.sort(busiest), serviceRoutes: serviceRoutes.sort(busiest) };
    return view;
  }

  #expire(now: number): void {
    for (const [instance, held] of this.#held) {
      if (held.receivedAt >= now - this.#ttl) break;
      this.#held.delete(instance);
    }
  }
}
