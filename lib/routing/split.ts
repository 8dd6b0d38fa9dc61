import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Middleware, MeshResponse } from '../pipeline/types.ts';
import type { Endpoint } from '../policy/compile.ts';
import { pickBackend } from './actions.ts';

const NO_ENDPOINTS: readonly Endpoint[] = [];

/**
 * Picks the backend of a traffic split, per attempt (inside the retry, so a retry may go to another
 * backend; outside the endpoint layer, which then balances over the chosen backend's endpoints with
 * that backend's balancer and outlier detection). The call keeps its logical service, route and
 * policy (timeout, retries, breaker, stats); the attempt's context names the backend and carries its
 * endpoints. A request with an origin already set (an absolute URL) is not split.
 */
export function splitLayer(deps: LayerDeps): Middleware {
  return (next) => (req, ctx) => {
    const split = ctx.routing?.split;
    if (!split || req.origin) return next(req, ctx);
    const backend = pickBackend(split, deps.random());
    if (backend === ctx.service) return next(req, ctx); // the service's own share: its own endpoints
    const endpoints = ctx.policyInForce.services.get(backend)?.endpoints ?? NO_ENDPOINTS;
    const attempt: CallContext = { ...ctx, backend, endpoints };
    // The endpoint layer notes where the attempt went, so that a retry can prefer another endpoint.
    const noteEndpoint = (): void => void (ctx.lastEndpoint = attempt.lastEndpoint);
    return next(req, attempt).then(
      (res: MeshResponse) => (noteEndpoint(), res),
      (err: unknown) => {
        noteEndpoint();
        throw err;
      },
    );
  };
}
