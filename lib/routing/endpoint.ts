import { ErrorCode, isMeshError } from '../errors.ts';
import type { LayerDeps } from '../pipeline/layers.ts';
import { PerDestination } from '../pipeline/per-destination.ts';
import type { CallContext, Middleware, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import type { Endpoint } from '../policy/compile.ts';
import { ServiceBalancer } from './balancer.ts';
import { noEndpointsError } from './no-endpoints.ts';
import { backendPolicy } from './split.ts';

function toEndpoint(req: MeshRequest, endpoint: Endpoint): MeshRequest {
  return { ...req, origin: endpoint.origin, path: endpoint.basePath ? endpoint.basePath + req.path : req.path };
}

/** Whether an attempt's failure tells about the endpoint: undefined for an abort (the caller's, a lost hedge). */
function endpointFailed(err: unknown, ctx: CallContext): boolean | undefined {
  if (ctx.signal?.aborted) return undefined;
  return isMeshError(err, ErrorCode.Connect) || isMeshError(err, ErrorCode.Reset) || isMeshError(err, ErrorCode.Timeout) ? true : undefined;
}

/**
 * Picks the endpoint for each attempt: power of two choices over peak-EWMA latency weighted by
 * requests in flight (or round-robin, by policy), skipping ejected endpoints, and preferring, for a
 * retry, another endpoint than the previous attempt's. Each attempt's outcome feeds the latency
 * estimate and outlier ejection. A request whose origin is already set (an absolute URL) keeps it;
 * a service with one endpoint needs no state at all.
 */
export function endpointLayer(deps: LayerDeps): Middleware {
  // One balancer per service, kept while the policy gives the service endpoints (PerDestination).
  const balancers = new PerDestination<ServiceBalancer>(deps);
  return (next) => (req, ctx) => {
    if (req.origin) return next(req, ctx);
    const { endpoints } = ctx;
    if (endpoints.length === 0) return Promise.reject(noEndpointsError(ctx.backend === undefined ? ctx : { ...ctx, service: ctx.backend }));
    if (endpoints.length === 1) return next(toEndpoint(req, endpoints[0]!), ctx);
    const started = performance.now();
    // A split's attempt is balanced by its backend's balancer, by the backend's balancing and outlier policy.
    const service = ctx.backend ?? ctx.service;
    const balancer = balancers.get(service) ?? balancers.add(service, service, true, new ServiceBalancer(service, deps.events));
    const policy = backendPolicy(ctx);
    const picked = balancer.pick(endpoints, ctx.lastEndpoint, policy, deps.random, started);
    ctx.lastEndpoint = picked.endpoint.url;
    picked.state.pending++;
    return next(toEndpoint(req, picked.endpoint), ctx).then(
      (res: MeshResponse) => {
        balancer.settle(picked, res.status >= 500, started, endpoints, policy, performance.now());
        return res;
      },
      (err: unknown) => {
        balancer.settle(picked, endpointFailed(err, ctx), started, endpoints, policy, performance.now());
        throw err;
      },
    );
  };
}
