import { ErrorCode, MeshError } from '../errors.ts';
import type { ClientScope } from './client-defaults.ts';
import { compilePath } from './contract.ts';
import type { Decoder, RouteSpec, ServiceContract, TypedRoutes } from './contract.ts';
import { jsonCall } from './json-call.ts';
import type { JsonCallOptions } from './json-call.ts';
import type { QueryParams } from './query.ts';
import { ServiceClient } from './service-client.ts';

type RouteInvoker = (args?: Record<string, unknown>) => Promise<unknown>;

/** Which value a decoder checks: what is sent (query, body) or what came back (response). */
type DecodedPart = 'query' | 'body' | 'response';

/**
 * Runs one of a route's decoders. A decoder that throws (a zod parse, a hand-written check) becomes
 * MESHFETCH_DECODE naming the route and the part; for query and body nothing has been sent.
 */
function decoded<T>(scope: ClientScope, route: string, part: DecodedPart, decoder: Decoder<T>, value: unknown): T {
  try {
    return decoder(value);
  } catch (err) {
    const side = part === 'response' ? 'the response body' : `the request ${part} (nothing was sent)`;
    const reason = err instanceof Error ? err.message : String(err);
    throw new MeshError(ErrorCode.Decode, `${scope.service} route ${route}: the ${part} decoder rejected ${side}: ${reason}`, {
      service: scope.service,
      route,
      cause: err,
    });
  }
}

/** One route as a method: its path template is split once, its name selects the policy route. */
function routeInvoker(scope: ClientScope, name: string, spec: RouteSpec): RouteInvoker {
  const fill = compilePath(name, spec.path);
  const { query, body, response } = spec;
  return async (args = {}) => {
    const options: JsonCallOptions = {
      query: (query && args.query !== undefined ? decoded(scope, name, 'query', query, args.query) : args.query) as QueryParams | undefined,
      headers: args.headers as JsonCallOptions['headers'],
      json: body ? decoded(scope, name, 'body', body, args.body) : args.body,
      signal: args.signal as AbortSignal | undefined,
      timeout: args.timeout as number | undefined,
    };
    const path = fill(args.params as Record<string, string | number> | undefined);
    const answer = await jsonCall(scope, name, spec.method, path, options);
    return response ? decoded(scope, name, 'response', response, answer) : answer;
  };
}

/** A ServiceClient with one typed method per route of the contract. */
export function typedClient<C extends ServiceContract>(scope: ClientScope, contract: C): ServiceClient & TypedRoutes<C> {
  const client = new ServiceClient(scope);
  for (const [name, spec] of Object.entries(contract.routes)) {
    Object.defineProperty(client, name, { value: routeInvoker(scope, name, spec), enumerable: true });
  }
  return client as ServiceClient & TypedRoutes<C>;
}
