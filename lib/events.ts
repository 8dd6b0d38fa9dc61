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
  /** A fault was injected into an attempt by policy (`fault`): an abort answered with `status`, or a delay of `duration` ms. */
  fault: { service: string; route: string | undefined; backend: string; kind: 'abort' | 'delay'; status: number | undefined; duration: number | undefined };
  /** A mirrored copy of a call to `service` ended (sent: answered, failed) or was not sent (dropped: cap reached or a one-shot body). */
  mirror: { service: string; route: string | undefined; mirror: string; outcome: 'sent' | 'failed' | 'dropped' };
  /** One attempt ended: its response body closed, or it failed. Emitted by the `attempt-telemetry` layer. */
  attempt: AttemptEnded;
  /** One logical call ended as the caller saw it, retries included. Emitted by the `telemetry` layer. */
  call: CallEnded;
}

/** How a call or attempt ended: 5xx and failures are `failure`; an abort by the caller or a lost hedge is `cancelled`. */
export type Outcome = 'success' | 'failure' | 'cancelled';

/** What the `call` and `attempt` events share. */
export interface RequestEnded {
  service: string;
  route: string | undefined;
  method: string;
  /** The status the caller got; undefined when the call failed without an answer. */
  status: number | undefined;
  /** The failure's `error.type` (a MeshError code, or the status as a string for 4xx/5xx). */
  errorType: string | undefined;
  outcome: Outcome;
  /** Milliseconds from the start of the call to its response body's end (or its failure). */
  duration: number;
}

export interface CallEnded extends RequestEnded {
  /** Attempts the call made (hedged copies not counted). */
  attempts: number;
}

export interface AttemptEnded extends RequestEnded {
  /** The origin the attempt was sent to. */
  origin: string;
  /** The service the attempt was sent to: a split's backend, else `service`. */
  backend: string;
  /** This attempt's number (hedged copies share their attempt's number). */
  attempt: number;
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
