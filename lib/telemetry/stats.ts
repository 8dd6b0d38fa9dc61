import type { GiveUpReason, MeshEvents } from '../events.ts';

/** In-process counters for one destination service. */
export interface ServiceStats {
  /** Retries sent (not counting first attempts or hedges). */
  retries: number;
  /** Hedged copies sent. */
  hedges: number;
  /** Times a retry or hedge was wanted but the retry budget had nothing left. */
  budgetExhausted: number;
  /** Calls that ended without a further attempt, by reason. */
  giveUps: Partial<Record<GiveUpReason, number>>;
}

export interface MeshStatsSnapshot {
  readonly services: Readonly<Record<string, Readonly<ServiceStats>>>;
}

/** Services counted; when full, the oldest goes, so made-up service names cannot grow it without end. */
const MAX_SERVICES = 1_024;

/**
 * Counts what the mesh's events report, per destination service. It is a listener like any other,
 * so events are built only on the paths that retry, hedge or give up, never on a plain success.
 */
export class StatsCollector {
  readonly #services = new Map<string, ServiceStats>();

  constructor(events: MeshEvents) {
    events.on('retry', (e) => this.#for(e.service).retries++);
    events.on('hedge', (e) => this.#for(e.service).hedges++);
    events.on('budgetExhausted', (e) => this.#for(e.service).budgetExhausted++);
    events.on('giveUp', (e) => {
      const giveUps = this.#for(e.service).giveUps;
      giveUps[e.why] = (giveUps[e.why] ?? 0) + 1;
    });
  }

  #for(service: string): ServiceStats {
    let stats = this.#services.get(service);
    if (stats) return stats;
    if (this.#services.size >= MAX_SERVICES) this.#services.delete(this.#services.keys().next().value!);
    this.#services.set(service, (stats = { retries: 0, hedges: 0, budgetExhausted: 0, giveUps: {} }));
    return stats;
  }

  snapshot(): MeshStatsSnapshot {
    const services: Record<string, ServiceStats> = {};
    for (const [name, stats] of this.#services) services[name] = { ...stats, giveUps: { ...stats.giveUps } };
    return { services };
  }
}
