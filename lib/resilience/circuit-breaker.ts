import CircuitBreaker from 'opossum';
import { ErrorCode, MeshError, stacklessError } from '../errors.ts';
import type { CircuitState, MeshEvents } from '../events.ts';
import type { DestinationState } from '../pipeline/per-destination.ts';
import type { CallContext, Handler, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import type { CircuitBreakerPolicy } from '../policy/types.ts';
import { BreakerWindow, FAILURES, SUCCESSES } from './breaker-window.ts';
import { SlidingCounts } from './sliding-counts.ts';

/** Failures a breaker counts: the destination did not answer, or not in time. */
const FAILURE_CODES: ReadonlySet<string> = new Set([ErrorCode.Connect, ErrorCode.Reset, ErrorCode.Timeout]);

/** An answer whose status the policy counts as a failure: thrown through opossum, returned to the caller. */
class FailedAnswer {
  readonly res: MeshResponse;
  constructor(res: MeshResponse) {
    this.res = res;
  }
}

type Action = (next: Handler, req: MeshRequest, ctx: CallContext) => Promise<MeshResponse>;
type Opossum = CircuitBreaker<Parameters<Action>, MeshResponse>;

function failureStatuses(failOn: CircuitBreakerPolicy['failOn']): (status: number) => boolean {
  const any5xx = failOn.includes('5xx');
  const listed = new Set(failOn.filter((s): s is number => typeof s === 'number'));
  return (status) => (any5xx && status >= 500 && status <= 599) || listed.has(status);
}

function isFailureError(err: unknown): boolean {
  return err instanceof FailedAnswer || (err instanceof MeshError && FAILURE_CODES.has(err.code));
}

function sameSettings(a: CircuitBreakerPolicy, b: CircuitBreakerPolicy): boolean {
  return (
    a.errorThresholdPercentage === b.errorThresholdPercentage &&
    a.volumeThreshold === b.volumeThreshold &&
    a.window === b.window &&
    a.resetTimeout === b.resetTimeout &&
    a.failOn.length === b.failOn.length &&
    a.failOn.every((s, i) => s === b.failOn[i])
  );
}

/**
 * The circuit breaker of one destination (a service, or one of its routes). opossum decides when a
 * closed circuit opens (error percentage over the window, with at least `volumeThreshold` calls) and
 * lets exactly one probe through when half-open. Three things keep its costs out:
 * - while the window holds no failure, calls do not go through opossum at all: successes are only
 *   counted, so a healthy destination costs a few hundred bytes. The first failure creates the
 *   opossum breaker over those counts and is replayed into it; once failures have left the window,
 *   the breaker is dropped again;
 * - its window is a BreakerWindow: no latency samples, no interval timers;
 * - the open period is kept here, as a time to compare against: when a circuit opens, its opossum
 *   breaker is shut down (clearing opossum's reset timer) and a fresh one is made, half-open, by the
 *   first call after `resetTimeout`. An open circuit rejects without calling opossum or the network.
 */
export class DestinationBreaker implements DestinationState {
  state: CircuitState = 'closed';
  readonly #service: string;
  readonly #route: string | undefined;
  readonly #events: MeshEvents;
  #settings: CircuitBreakerPolicy;
  #isFailure: (status: number) => boolean;
  #counts: SlidingCounts;
  #opossum: Opossum | undefined;
  #openUntil = 0;
  /** Calls sent through this breaker whose outcome it has not seen yet (a half-open probe among them). */
  #inFlight = 0;
  /** Set by errorFilter for an outcome that says nothing about the destination's health (a caller's abort). */
  #neutral = false;

  constructor(service: string, route: string | undefined, settings: CircuitBreakerPolicy, events: MeshEvents) {
    this.#service = service;
    this.#route = route;
    this.#events = events;
    this.#settings = settings;
    this.#isFailure = failureStatuses(settings.failOn);
    this.#counts = new SlidingCounts(settings.window, 2);
  }

  call(next: Handler, req: MeshRequest, ctx: CallContext, settings: CircuitBreakerPolicy, now: number): Promise<MeshResponse> {
    if (settings !== this.#settings) this.#reconfigure(settings);
    if (this.state === 'open') {
      if (now < this.#openUntil) return Promise.reject(this.#openError(this.#openUntil - now));
      this.#counts = new SlidingCounts(this.#settings.window, 2);
      this.#opossum = this.#create(true);
      this.#change('half-open');
    } else if (this.state === 'closed' && this.#opossum && this.#counts.sum(FAILURES, now) === 0) {
      this.#opossum.shutdown(); // healthy again: back to counting only
      this.#opossum = undefined;
    }
    this.#inFlight++;
    if (this.#opossum) return this.#opossum.fire(next, req, ctx).then(this.#answered, this.#unwrap);
    return next(req, ctx).then(this.#healthyAnswer, this.#healthyFailure);
  }

  /** Whether a call now would be refused without being sent (open, and not yet due for a probe). */
  refuses(now: number): boolean {
    return this.state === 'open' && now < this.#openUntil;
  }

  inUse(): boolean {
    return this.#inFlight > 0;
  }

  idle(now: number, lastUsed: number): boolean {
    return now - lastUsed > this.#settings.window + this.#settings.resetTimeout;
  }

  /** Dropped when idle or at mesh.close(): a circuit that was not closed is reported closed (forgotten). */
  dispose(): void {
    this.#opossum?.shutdown();
    this.#opossum = undefined;
    if (this.state !== 'closed') this.#change('closed');
  }

  readonly #answered = (res: MeshResponse): MeshResponse => {
    this.#inFlight--;
    return res;
  };

  readonly #healthyAnswer = (res: MeshResponse): MeshResponse | Promise<MeshResponse> => {
    this.#inFlight--;
    if (!this.#isFailure(res.status)) {
      this.#counts.add(SUCCESSES);
      return res;
    }
    return this.#firstFailure(new FailedAnswer(res)).then(() => res);
  };

  readonly #healthyFailure = (err: unknown): Promise<never> => {
    this.#inFlight--;
    if (!isFailureError(err)) return Promise.reject(err);
    return this.#firstFailure(err).then(() => Promise.reject(err));
  };

  /**
   * A failure while no opossum breaker runs: make one over the counts so far and let it judge this
   * failure; the call settles once it has (so the circuit is open, if it opens, when the call ends).
   */
  #firstFailure(failure: unknown): Promise<void> {
    if (this.#opossum || this.state !== 'closed') return Promise.resolve(); // a call still in flight from before
    const breaker = (this.#opossum = this.#create(false));
    return breaker.fire(() => Promise.reject(failure), undefined as never, undefined as never).then(
      () => {},
      () => {},
    );
  }

  #create(halfOpen: boolean): Opossum {
    const settings = this.#settings;
    const window = new BreakerWindow(settings.window, this.#counts);
    const isFailure = this.#isFailure;
    const action: Action = async (next, req, ctx) => {
      const res = await next(req, ctx);
      if (isFailure(res.status)) throw new FailedAnswer(res);
      return res;
    };
    const breaker = new CircuitBreaker(action, {
      name: this.#service,
      timeout: false, // the deadline and per-try timeout layers bound a call; no timer per call here
      resetTimeout: settings.resetTimeout,
      errorThresholdPercentage: settings.errorThresholdPercentage,
      volumeThreshold: settings.volumeThreshold,
      rollingCountTimeout: settings.window,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      status: window as unknown as CircuitBreaker.Status,
      errorFilter: (err: unknown) => {
        if (isFailureError(err)) return false;
        // opossum reports a filtered error as a success: the window skips it, and a probe it ended
        // leaves the circuit half-open for the next call (see the 'close' listener).
        window.ignoreNextSuccess = true;
        this.#neutral = true;
        return true;
      },
      ...(halfOpen ? { state: { closed: false, halfOpen: true } as unknown as CircuitBreaker.State } : {}),
    });
    breaker.on('open', () => this.#opened(breaker));
    breaker.on('close', () => {
      if (!this.#neutral) return this.#change('closed');
      this.#counts = new SlidingCounts(this.#settings.window, 2);
      this.#opossum = this.#create(true); // the probe proved nothing: probe again
    });
    breaker.on('success', () => (this.#neutral = false)); // runs after opossum's own close-on-success
    return breaker;
  }

  #opened(breaker: Opossum): void {
    breaker.shutdown();
    if (this.#opossum === breaker) this.#opossum = undefined;
    this.#openUntil = Date.now() + this.#settings.resetTimeout;
    this.#change('open');
  }

  #reconfigure(settings: CircuitBreakerPolicy): void {
    const same = sameSettings(settings, this.#settings);
    this.#settings = settings;
    if (same) return;
    this.#isFailure = failureStatuses(settings.failOn);
    if (this.state === 'closed') {
      // A new window for the new settings: counts over another window length would mislead.
      this.#opossum?.shutdown();
      this.#opossum = undefined;
      this.#counts = new SlidingCounts(settings.window, 2);
    }
  }

  #change(state: CircuitState): void {
    const previous = this.state;
    this.state = state;
    if (this.#events.has('circuit')) this.#events.emit('circuit', { service: this.#service, route: this.#route, state, previous });
  }

  #openError(retryIn: number): MeshError {
    const where = this.#route ? `${this.#service} (${this.#route})` : this.#service;
    return stacklessError(ErrorCode.CircuitOpen, `the circuit for ${where} is open; the next probe is allowed in ${retryIn}ms`, {
      service: this.#service,
      route: this.#route,
      retryable: false,
    });
  }

  readonly #unwrap = (err: unknown): MeshResponse => {
    this.#inFlight--;
    if (err instanceof FailedAnswer) return err.res;
    if (err instanceof Error && CircuitBreaker.isOurError(err)) {
      // EOPENBREAKER: a half-open circuit whose one probe is in flight; ESHUTDOWN: dropped meanwhile.
      throw this.#openError(Math.max(0, this.#openUntil - Date.now()));
    }
    throw err;
  };
}
