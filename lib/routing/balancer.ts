import type { MeshEvents } from '../events.ts';
import type { DestinationState } from '../pipeline/per-destination.ts';
import type { Endpoint } from '../policy/compile.ts';
import type { CallPolicy, OutlierDetectionPolicy } from '../policy/types.ts';
import { EndpointState } from './endpoint-state.ts';

/** Per-endpoint state unused (not even considered) for this long is dropped: the endpoint left the policy. */
const ENDPOINT_IDLE_MS = 60_000;

export interface Pick {
  readonly endpoint: Endpoint;
  readonly state: EndpointState;
}

/**
 * Load balancing over one service's endpoints: power of two choices over peak-EWMA cost (or
 * round-robin), skipping ejected endpoints and, when it can, the endpoint the call's previous
 * attempt used. State is per (service, endpoint URL), so a new policy revision that keeps an
 * endpoint keeps its state; an endpoint that left is forgotten once unused for a minute.
 */
export class ServiceBalancer implements DestinationState {
  readonly #service: string;
  readonly #events: MeshEvents;
  readonly #states = new Map<string, EndpointState>();
  #cursor = 0;
  #nextSweep = 0;

  constructor(service: string, events: MeshEvents) {
    this.#service = service;
    this.#events = events;
  }

  pick(endpoints: readonly Endpoint[], avoid: string | undefined, policy: CallPolicy, random: () => number, now: number): Pick {
    if (now >= this.#nextSweep) this.#sweep(now);
    const n = endpoints.length;
    if (policy.loadBalancer.strategy === 'round-robin') {
      // The cursor moves past endpoints out of rotation, so that the others share their turns evenly.
      for (let k = 0; k < n; k++) {
        const endpoint = endpoints[this.#cursor++ % n]!;
        const state = this.#state(endpoint, now);
        if (!state.isEjected(now) && endpoint.url !== avoid) return { endpoint, state };
      }
      return this.#eligibleFrom(endpoints, this.#cursor++ % n, avoid, undefined, policy, now);
    }
    const i = Math.floor(random() * n);
    let j = Math.floor(random() * (n - 1));
    if (j >= i) j++;
    const a = this.#eligibleFrom(endpoints, i, avoid, undefined, policy, now);
    const b = this.#eligibleFrom(endpoints, j, avoid, a.endpoint, policy, now);
    if (a === b || a.endpoint === b.endpoint) return a;
    // b is the endpoint to avoid only when nothing else was left for it: a cheaper cost does not bring it back.
    if (b.endpoint.url === avoid) return a;
    // An endpoint back from ejection gets its probe as soon as it is drawn, one at a time.
    if (a.state.awaitingProbe(now)) return a;
    if (b.state.awaitingProbe(now)) return b;
    return b.state.cost(policy.loadBalancer, now) < a.state.cost(policy.loadBalancer, now) ? b : a;
  }

  /**
   * The first endpoint from `start` on (wrapping) that is in rotation, is not `avoid` and not
   * `other`; relaxing `avoid`, then `other`, then ejection, when nothing else is left.
   */
  #eligibleFrom(endpoints: readonly Endpoint[], start: number, avoid: string | undefined, other: Endpoint | undefined, policy: CallPolicy, now: number): Pick {
    let fallback: Pick | undefined;
    for (let k = 0; k < endpoints.length; k++) {
      const endpoint = endpoints[(start + k) % endpoints.length]!;
      if (endpoint === other) continue;
      const state = this.#state(endpoint, now);
      if (state.isEjected(now)) continue;
      if (endpoint.url === avoid) {
        fallback ??= { endpoint, state };
        continue;
      }
      return { endpoint, state };
    }
    if (fallback) return fallback;
    const endpoint = other ?? endpoints[start]!;
    return { endpoint, state: this.#state(endpoint, now) };
  }

  #state(endpoint: Endpoint, now: number): EndpointState {
    let state = this.#states.get(endpoint.url);
    if (!state) this.#states.set(endpoint.url, (state = new EndpointState()));
    state.lastUsed = now;
    return state;
  }

  /** Records how an attempt to `picked` ended: `failed` undefined means it says nothing (an abort). */
  settle(picked: Pick, failed: boolean | undefined, started: number, endpoints: readonly Endpoint[], policy: CallPolicy, now: number): void {
    const { state } = picked;
    state.pending--;
    // An attempt that was sent before its endpoint was ejected says nothing new about it.
    if (failed === undefined || state.isEjected(now)) return;
    state.observe(now - started, failed, policy.loadBalancer, now);
    const outliers = policy.outlierDetection;
    if (!failed) {
      if (state.succeeded(outliers, now)) this.#announce(picked.endpoint, false, 0);
      return;
    }
    if (outliers && state.failed(outliers) && this.#mayEject(state, endpoints, outliers, now)) {
      this.#announce(picked.endpoint, true, state.eject(outliers, now));
    }
  }

  /** At most maxEjectedPercent of the endpoints (at least one when it is above 0), and never all. */
  #mayEject(state: EndpointState, endpoints: readonly Endpoint[], outliers: OutlierDetectionPolicy, now: number): boolean {
    if (state.ejected) return true; // a failed probe: it is already counted among the ejected
    const n = endpoints.length;
    const allowed = Math.min(n - 1, Math.max(outliers.maxEjectedPercent > 0 ? 1 : 0, Math.floor((n * outliers.maxEjectedPercent) / 100)));
    let ejected = 0;
    for (const endpoint of endpoints) if (this.#states.get(endpoint.url)?.isEjected(now)) ejected++;
    return ejected < allowed;
  }

  #announce(endpoint: Endpoint, ejected: boolean, duration: number): void {
    if (this.#events.has('ejection')) this.#events.emit('ejection', { service: this.#service, endpoint: endpoint.url, ejected, duration });
  }

  #sweep(now: number): void {
    this.#nextSweep = now + ENDPOINT_IDLE_MS;
    for (const [url, state] of this.#states) if (state.pending === 0 && now - state.lastUsed > ENDPOINT_IDLE_MS) this.#states.delete(url);
  }

  /** An attempt is in flight to one of the endpoints: its outcome is still to be settled here. */
  inUse(): boolean {
    for (const state of this.#states.values()) if (state.pending > 0) return true;
    return false;
  }
}
