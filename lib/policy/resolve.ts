import type { CompiledPolicy, CompiledService } from './compile.ts';
import type { CallPolicy } from './types.ts';

export interface ResolvedCall {
  readonly service: CompiledService | undefined;
  readonly route: string | undefined;
  readonly policy: CallPolicy;
}

function pathOnly(path: string): string {
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}

/**
 * The policy for one call: the named route's, else the first route whose method and path match, else
 * the service's, else the defaults. Nothing is merged here; compilePolicy did that ahead of time.
 */
export function resolveCall(
  policy: CompiledPolicy,
  serviceName: string,
  routeName: string | undefined,
  method: string,
  path: string,
): ResolvedCall {
  const service = policy.services.get(serviceName);
  if (!service) return { service, route: routeName, policy: policy.defaults };
  const named = routeName === undefined ? undefined : service.routesByName.get(routeName);
  if (named) return { service, route: routeName, policy: named.policy };
  if (service.routes.length > 0) {
    const bare = pathOnly(path);
    for (const route of service.routes) {
      if ((route.methods === null || route.methods.has(method)) && route.pattern.test(bare)) {
        return { service, route: routeName ?? route.name, policy: route.policy };
      }
    }
  }
  return { service, route: routeName, policy: service.policy };
}
