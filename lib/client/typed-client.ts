import type { MeshCore } from './call.ts';
import { compilePath } from './contract.ts';
import type { RouteSpec, ServiceContract, TypedRoutes } from './contract.ts';
import { jsonCall } from './json-call.ts';
import type { JsonCallOptions } from './json-call.ts';
import { ServiceClient } from './service-client.ts';

type RouteInvoker = (args?: Record<string, unknown>) => Promise<unknown>;

/** One route as a method: its path template is split once, its name selects the policy route. */
function routeInvoker(core: MeshCore, service: string, name: string, spec: RouteSpec): RouteInvoker {
  const fill = compilePath(name, spec.path);
  const decode = spec.response;
  return async (args = {}) => {
    const options: JsonCallOptions = {
      query: args.query as JsonCallOptions['query'],
      headers: args.headers as JsonCallOptions['headers'],
      json: args.body,
      signal: args.signal as AbortSignal | undefined,
      timeout: args.timeout as number | undefined,
    };
    const path = fill(args.params as Record<string, string | number> | undefined);
    const body = await jsonCall(core, service, name, spec.method, path, options);
    return decode ? decode(body) : body;
  };
}

/** A ServiceClient with one typed method per route of the contract. */
export function typedClient<C extends ServiceContract>(core: MeshCore, service: string, contract: C): ServiceClient & TypedRoutes<C> {
  const client = new ServiceClient(core, service);
  for (const [name, spec] of Object.entries(contract.routes)) {
    Object.defineProperty(client, name, { value: routeInvoker(core, service, name, spec), enumerable: true });
  }
  return client as ServiceClient & TypedRoutes<C>;
}
