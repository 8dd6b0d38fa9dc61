import type { CompiledPolicy, CompiledService } from './compile.ts';
import type { CallPolicy } from './types.ts';
import { NO_ROUTING } from '../routing/actions.ts';
import type { RoutingActions } from '../routing/actions.ts';
import { firstMatch } from '../routing/route-match.ts';
import type { HeaderRecord } from '../pipeline/types.ts';

export interface ResolvedCall {
  readonly service: CompiledService | undefined;
  readonly route: string | undefined;
  readonly policy: CallPolicy;
  /** Split, fault and mirror in force for the call. */
  readonly routing: RoutingActions;
}

const NO_HEADERS: HeaderRecord = {};

/**
 * The policy for one call: the named route's, else the most specific route whose match block the
 * call matches (method, path template or prefix, headers, query: lib/routing/route-match.ts), else
 * the service's, else the defaults. Nothing is merged here; compilePolicy did that ahead of time.
 */
export function resolveCall(
  policy: CompiledPolicy,
  serviceName: string,
  routeName: string | undefined,
  method: string,
  path: string,
  headers: HeaderRecord = NO_HEADERS,
): ResolvedCall {
  const service = policy.services.get(serviceName);
  if (!service) return { service, route: routeName, policy: policy.defaults, routing: NO_ROUTING };
  const named = routeName === undefined ? undefined : service.routesByName.get(routeName);
  if (named) return { service, route: routeName, policy: named.policy, routing: named.routing };
  if (service.matches.length > 0) {
    const route = firstMatch(service.matches, method, path, headers);
    if (route) return { service, route: routeName ?? route.name, policy: route.policy, routing: route.routing };
  }
  return { service, route: routeName, policy: service.policy, routing: service.routing };
}
