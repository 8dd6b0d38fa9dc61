import type { LayerDeps } from '../pipeline/layers.ts';
import { PerDestination } from '../pipeline/per-destination.ts';
import type { CallContext, Handler, Middleware, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import type { CompiledService, Endpoint } from '../policy/compile.ts';
import type { CallPolicy } from '../policy/types.ts';
import { DestinationBreaker } from '../resilience/circuit-breaker.ts';
import { pickBackend } from './actions.ts';
import type { Split } from './actions.ts';

const NO_ENDPOINTS: readonly Endpoint[] = [];

/**
 * The policy of the service an attempt is actually sent to: a split's backend's own (for what belongs
 * to the backend: balancing, outlier detection, tls.mode), else the call's.
 */
export function backendPolicy(ctx: CallContext): CallPolicy {
  return ctx.backend === undefined ? ctx.policy : (ctx.policyInForce.services.get(ctx.backend)?.policy ?? ctx.policy);
}
/** How often, at most, an attempt walks the backend breakers to drop idle ones. */
const SWEEP_MS = 10_000;

/**
 * Picks the backend of a traffic split, per attempt (inside the retry, so a retry may go to another
 * backend; outside the endpoint layer, which then balances over the chosen backend's endpoints with
 * that backend's balancer and outlier detection). The call keeps its logical service, route and
 * policy (timeout, retries, its own breaker, stats); the attempt's context names the backend and
 * carries its endpoints. A backend other than the service itself also has a circuit breaker of its
 * own, by its own `circuitBreaker` policy, counting the attempts sent to it: while it refuses, its
 * share goes to the next backend of the split that does not. A request with an origin already set
 * (an absolute URL) is not split.
 */
export function splitLayer(deps: LayerDeps): Middleware {
  const breakers = new PerDestination<DestinationBreaker>(deps, SWEEP_MS);

  function breakerOf(target: CompiledService, now: number): DestinationBreaker | undefined {
    const settings = target.policy.circuitBreaker;
    if (settings === null) return undefined;
    return breakers.get(target.name, now) ?? breakers.add(target.name, target.name, true, new DestinationBreaker(target.name, undefined, settings, deps.events), now);
  }

  /** The picked backend, or while its breaker refuses, the first of the split's others that does not. */
  function choose(split: Split, picked: string, ctx: CallContext, now: number): string {
    if (picked === ctx.service || !breakers.get(picked, now)?.refuses(now)) return picked;
    for (const { service } of split.backends) {
      if (service !== picked && (service === ctx.service || !breakers.get(service, now)?.refuses(now))) return service;
    }
    return picked; // every backend refuses: the picked one's breaker fails the attempt fast
  }

  function send(next: Handler, req: MeshRequest, ctx: CallContext, target: CompiledService | undefined, backend: string, now: number): Promise<MeshResponse> {
    const attempt: CallContext = { ...ctx, backend, endpoints: target?.endpoints ?? NO_ENDPOINTS };
    const breaker = target && breakerOf(target, now);
    const sent = breaker ? breaker.call(next, req, attempt, target.policy.circuitBreaker!, now) : next(req, attempt);
    // The endpoint layer notes where the attempt went, so that a retry can prefer another endpoint; at
    // once too (the pick is made as the attempt is sent), so that a hedge sent meanwhile can.
    const noteEndpoint = (): void => void (ctx.lastEndpoint = attempt.lastEndpoint);
    noteEndpoint();
    return sent.then(
      (res) => (noteEndpoint(), res),
      (err: unknown) => {
        noteEndpoint();
        throw err;
      },
    );
  }

  return (next) => (req, ctx) => {
    const split = ctx.routing?.split;
    if (!split || req.origin) return next(req, ctx);
    const now = Date.now();
    const backend = choose(split, pickBackend(split, deps.random()), ctx, now);
    if (backend === ctx.service) return next(req, ctx); // the service's own share: its own endpoints and breaker
    return send(next, req, ctx, ctx.policyInForce.services.get(backend), backend, now);
  };
}
