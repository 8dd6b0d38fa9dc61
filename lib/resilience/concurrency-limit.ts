import { ErrorCode, MeshError } from '../errors.ts';
import type { LayerDeps } from '../pipeline/layers.ts';
import { namedInPolicy, PerDestination } from '../pipeline/per-destination.ts';
import type { DestinationState } from '../pipeline/per-destination.ts';
import type { CallContext, Middleware, MeshResponse } from '../pipeline/types.ts';
import { limitedError, releaseWhenDone } from './limits.ts';

const SWEEP_MS = 10_000;
const IDLE_MS = 60_000;

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * A bulkhead for one destination service: at most `max` calls in flight (a call holds its slot until
 * its response body is done), and up to `queue` more waiting in arrival order. A waiting call gives
 * up when its own signal aborts (its deadline, or its caller), so the queue needs no timer.
 */
class Bulkhead implements DestinationState {
  inFlight = 0;
  /** The policy's max as of the latest call: a policy update takes effect on the next call or release. */
  #max = 0;
  readonly #waiting: Waiter[] = [];

  /** Resolves when the call may go; true at once (no promise) when a slot is free. */
  acquire(max: number, queue: number, ctx: CallContext): true | Promise<void> | undefined {
    this.#max = max;
    if (this.#waiting.length > 0) this.#admitWaiting(); // a raised max lets queued calls go first
    if (this.inFlight < max && this.#waiting.length === 0) {
      this.inFlight++;
      return true;
    }
    if (this.#waiting.length >= queue) return undefined;
    return new Promise<void>((resolve, reject) => {
      const signal = ctx.signal;
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#waiting.indexOf(waiter);
          if (at !== -1) this.#waiting.splice(at, 1);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** A call is done: its slot goes to the first waiter, if the max in force (maybe lowered since) allows. */
  release = (): void => {
    this.inFlight--;
    this.#admitWaiting();
  };

  #admitWaiting(): void {
    while (this.inFlight < this.#max && this.#waiting.length > 0) {
      const waiter = this.#waiting.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.inFlight++;
      waiter.resolve();
    }
  }

  inUse(): boolean {
    return this.inFlight > 0 || this.#waiting.length > 0;
  }

  idle(now: number, lastUsed: number): boolean {
    return now - lastUsed > IDLE_MS;
  }

  /** mesh.close(): waiting calls are refused. */
  dispose(): void {
    for (const waiter of this.#waiting.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new MeshError(ErrorCode.Closed, 'mesh is closed'));
    }
  }
}

/**
 * Enforces `concurrency: { max, queue }` per destination service. A call refused because every slot
 * and queue place is taken fails with MESHFETCH_CONCURRENCY_LIMIT (not retryable).
 */
export function concurrencyLayer(deps: LayerDeps): Middleware {
  const bulkheads = new PerDestination<Bulkhead>(deps, SWEEP_MS);
  return (next) => (req, ctx) => {
    const { max, queue } = ctx.policy.concurrency;
    const now = Date.now();
    const bulkhead = bulkheads.get(ctx.service, now) ?? bulkheads.add(ctx.service, ctx.service, namedInPolicy(ctx), new Bulkhead(), now);
    const admitted = bulkhead.acquire(max, queue, ctx);
    if (admitted === undefined) return Promise.reject(limitedError(deps.events, ctx, 'concurrency', `${max} calls in flight and ${queue} waiting`));
    if (admitted === true) return releaseWhenDone(next(req, ctx), bulkhead.release);
    return admitted.then((): Promise<MeshResponse> => releaseWhenDone(next(req, ctx), bulkhead.release));
  };
}
