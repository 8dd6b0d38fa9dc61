import type { LayerDeps } from '../pipeline/layers.ts';
import type { Middleware } from '../pipeline/types.ts';
import { DestinationBreaker } from './circuit-breaker.ts';
import { namedInPolicy, PerDestination } from '../pipeline/per-destination.ts';

/** How often, at most, a call walks the breakers to drop idle ones. */
const SWEEP_MS = 10_000;

/**
 * One circuit breaker per destination (service, or service and route), made on its first call,
 * dropped once idle for longer than its window and reset timeout (never with a call in flight), and
 * shut down by mesh.close().
 */
export function circuitBreakerLayer(deps: LayerDeps): Middleware {
  const breakers = new PerDestination<DestinationBreaker>(deps, SWEEP_MS);
  return (next) => (req, ctx) => {
    const settings = ctx.policy.circuitBreaker;
    if (settings === null) return next(req, ctx);
    const now = Date.now();
    const key = ctx.route === undefined ? ctx.service : `${ctx.service} ${ctx.route}`;
    const breaker = breakers.get(key, now) ?? breakers.add(key, ctx.service, namedInPolicy(ctx), new DestinationBreaker(ctx.service, ctx.route, settings, deps.events), now);
    return breaker.call(next, req, ctx, settings, now);
  };
}
