import type { LayerDeps } from '../pipeline/layers.ts';
import { PerService } from '../pipeline/per-service.ts';
import type { Middleware } from '../pipeline/types.ts';
import { noEndpointsError } from './no-endpoints.ts';

/**
 * Picks the endpoint for each attempt, round-robin per service, so that a retry may land on another
 * endpoint. A request whose origin is already set (an absolute URL) keeps it.
 */
export function endpointLayer(deps: LayerDeps): Middleware {
  const cursors = new PerService(() => ({ next: 0 }), deps);
  return (next) => (req, ctx) => {
    if (req.origin) return next(req, ctx);
    const { endpoints } = ctx;
    if (endpoints.length === 0) return Promise.reject(noEndpointsError(ctx));
    let endpoint = endpoints[0]!;
    if (endpoints.length > 1) {
      const cursor = cursors.get(ctx);
      endpoint = endpoints[cursor.next % endpoints.length]!;
      cursor.next = (cursor.next + 1) % endpoints.length;
    }
    const path = endpoint.basePath ? endpoint.basePath + req.path : req.path;
    return next({ ...req, origin: endpoint.origin, path }, ctx);
  };
}
