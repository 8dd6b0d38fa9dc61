/** What each event carries. Every event names the destination service and route. */
export interface MeshEventMap {
  /** A retry is about to be made after `delay` ms; `attempt` is the number of the coming attempt. */
  retry: { service: string; route: string | undefined; attempt: number; delay: number; reason: unknown };
  /** The call failed and no retry follows: `why` says what stopped it. */
  giveUp: { service: string; route: string | undefined; attempts: number; why: GiveUpReason; reason: unknown };
  /** A retry or hedge was wanted but the destination's retry budget had nothing left. */
  budgetExhausted: { service: string; route: string | undefined; attempt: number };
  /** A hedged attempt was sent because the first had not answered within `delay` ms. */
  hedge: { service: string; route: string | undefined; attempt: number; delay: number };
  /** A destination's circuit breaker changed state. */
  circuit: { service: string; route: string | undefined; state: CircuitState; previous: CircuitState };
  /** A call was refused by a concurrency or rate limit before it reached the network. */
  limited: { service: string; route: string | undefined; limit: 'concurrency' | 'rate' };
  /** An endpoint was ejected from load balancing for `duration` ms, or readmitted (duration 0). */
  ejection: { service: string; endpoint: string; ejected: boolean; duration: number };
  /** This mesh's certificate material: loaded, rotated, refused, or near or past its expiry. */
  certificate: { state: CertificateState; notAfter: number | undefined; subject: string | undefined; reason: string | undefined };
  /** A policy revision went in force (applied), or was refused and the one in force stays (applied: false). */
  policy: { revision: string | undefined; source: PolicySource; applied: boolean; error: string | undefined };
}

/** Where a policy in force came from. */
export type PolicySource = 'control-plane' | 'cache' | 'file' | 'option' | 'defaults';

export type CircuitState = 'closed' | 'open' | 'half-open';
export type CertificateState = 'loaded' | 'rotated' | 'refused' | 'expiring' | 'expired';

export type GiveUpReason =
  | 'not-retryable'
  | 'attempts'
  | 'budget'
  | 'deadline'
  | 'retry-after'
  | 'not-idempotent'
  | 'body-not-replayable';
export type MeshEventName = keyof MeshEventMap;
export type MeshEventListener<K extends MeshEventName> = (event: MeshEventMap[K]) => void;

/**
 * Typed events. `on` returns a function that removes the listener. Emitters ask `has(name)` first so
 * that no event object is built when nobody listens. A throwing listener cannot break a call: its
 * error becomes a process warning.
 */
export class MeshEvents {
  readonly #listeners = new Map<MeshEventName, Set<MeshEventListener<never>>>();

  on<K extends MeshEventName>(name: K, listener: MeshEventListener<K>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener as MeshEventListener<never>);
    return () => {
      // Called twice, or after a newer set replaced this one, it must not remove anyone else's listener.
      if (!set.delete(listener as MeshEventListener<never>)) return;
      if (set.size === 0 && this.#listeners.get(name) === set) this.#listeners.delete(name);
    };
  }

  has(name: MeshEventName): boolean {
    return this.#listeners.has(name);
  }

  emit<K extends MeshEventName>(name: K, event: MeshEventMap[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as MeshEventListener<K>)(event);
      } catch (err) {
        process.emitWarning(`meshfetch ${name} listener threw: ${String(err)}`, 'MeshfetchListenerWarning');
      }
    }
  }
}
