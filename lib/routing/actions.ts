/**
 * What the policy decides about where a call goes, besides how it is made: a traffic split, fault
 * injection and mirroring, compiled per service and per route (lib/policy/routing.ts) and carried by
 * the CallContext. Layers read it per call; nothing here is computed on the hot path.
 */

/** One backend of a split; `upTo` is the cumulative weight, so a pick is one scan over a few entries. */
export interface SplitBackend {
  readonly service: string;
  readonly upTo: number;
}

/** Backends with weight > 0 (a weight 0 entry drains and is left out), and their weights' sum. */
export interface Split {
  readonly backends: readonly SplitBackend[];
  readonly total: number;
}

export interface FaultAbort {
  readonly percent: number;
  readonly status: number;
}

export interface FaultDelay {
  readonly percent: number;
  /** Milliseconds. */
  readonly duration: number;
}

export interface Fault {
  readonly abort: FaultAbort | null;
  readonly delay: FaultDelay | null;
}

export interface Mirror {
  readonly service: string;
  readonly percent: number;
}

export interface RoutingActions {
  readonly split: Split | null;
  readonly fault: Fault | null;
  readonly mirror: Mirror | null;
}

/** Where nothing is configured: every routing layer passes the call straight on. */
export const NO_ROUTING: RoutingActions = Object.freeze({ split: null, fault: null, mirror: null });

/** The backend for `draw` in [0, 1). */
export function pickBackend(split: Split, draw: number): string {
  const at = draw * split.total;
  const { backends } = split;
  for (let i = 0; i < backends.length - 1; i++) if (at < backends[i]!.upTo) return backends[i]!.service;
  return backends[backends.length - 1]!.service;
}

/** Whether an action configured for `percent` % of calls fires, for `draw` in [0, 1). */
export function fires(percent: number, draw: number): boolean {
  return draw * 100 < percent;
}
