import { configError } from '../errors.ts';
import type { JsonCallOptions } from './json-call.ts';
import type { QueryParams } from './query.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/**
 * Turns a value into a typed one, and may validate it (e.g. a zod schema's parse). `query` and `body`
 * decoders run on what the caller passes, before anything is sent, and what they return is sent;
 * `response` runs on the parsed JSON answer. A decoder that throws rejects the call with MESHFETCH_DECODE.
 */
export type Decoder<T> = (value: unknown) => T;

const identity = <T>(value: unknown): T => value as T;

/** A decoder that only declares a type: `response: shape<Charge>()`. Nothing is checked at run time. */
export function shape<T>(): Decoder<T> {
  return identity<T>;
}

export interface RouteSpec {
  readonly method: HttpMethod;
  /** "/charges/:id": `:name` segments are path parameters. */
  readonly path: string;
  readonly query?: Decoder<unknown>;
  readonly body?: Decoder<unknown>;
  readonly response?: Decoder<unknown>;
}

export interface ServiceContract<R extends Record<string, RouteSpec> = Record<string, RouteSpec>> {
  readonly routes: R;
}

/** "/a/:id/b/:key" → "id" | "key" */
export type PathParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | PathParamNames<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

type ParamsArg<P extends string> = [PathParamNames<P>] extends [never]
  ? { params?: undefined }
  : { params: Record<PathParamNames<P>, string | number> };
type BodyArg<S> = S extends { body: Decoder<infer B> } ? { body: B } : { body?: undefined };
type QueryArg<S> = S extends { query: Decoder<infer Q> } ? { query?: Q } : { query?: QueryParams };

export type RouteArgs<S extends RouteSpec> = ParamsArg<S['path']> &
  BodyArg<S> &
  QueryArg<S> &
  Pick<JsonCallOptions, 'headers' | 'signal' | 'timeout'>;

export type RouteResponse<S> = S extends { response: Decoder<infer R> } ? R : unknown;

type NeedsArgs<S extends RouteSpec> = [PathParamNames<S['path']>] extends [never]
  ? S extends { body: Decoder<unknown> }
    ? true
    : false
  : true;

export type RouteMethod<S extends RouteSpec> = NeedsArgs<S> extends true
  ? (args: RouteArgs<S>) => Promise<RouteResponse<S>>
  : (args?: RouteArgs<S>) => Promise<RouteResponse<S>>;

export type TypedRoutes<C extends ServiceContract> = { readonly [K in keyof C['routes']]: RouteMethod<C['routes'][K]> };

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/**
 * Route names that would hide a ServiceClient member, or make the client a thenable (`then`: an async
 * function returning the client would call it), or shadow an Object.prototype member.
 */
const RESERVED = new Set(['fetch', 'get', 'post', 'put', 'patch', 'delete', 'service', 'then']);

/** Declares a service's routes once; `mesh.client(name, contract)` turns each into a typed method. */
export function defineService<const R extends Record<string, RouteSpec>>(contract: { routes: R }): ServiceContract<R> {
  for (const [name, spec] of Object.entries(contract.routes ?? {})) {
    const where = `defineService routes.${name}`;
    if (RESERVED.has(name) || name in Object.prototype) {
      throw configError(`${where}: "${name}" is reserved (a client method, "then", or an Object.prototype member); choose another route name`);
    }
    if (!METHODS.has(spec?.method)) throw configError(`${where}.method: expected one of ${[...METHODS].join(', ')}, got ${JSON.stringify(spec?.method)}`);
    if (typeof spec.path !== 'string' || !spec.path.startsWith('/')) {
      throw configError(`${where}.path: expected a path starting with "/", got ${JSON.stringify(spec.path)}`);
    }
  }
  return Object.freeze({ routes: contract.routes });
}

/** A route path split once into literal text and parameter names, filled on every call. */
export function compilePath(route: string, path: string): (params: Record<string, string | number> | undefined) => string {
  // A parameter runs to the end of its segment, as PathParamNames types it ("/a/:charge-id" → "charge-id").
  const parts = path.split(/:([^/]+)/);
  if (parts.length === 1) return () => path;
  return (params) => {
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) {
      const name = parts[i]!;
      const value = params !== undefined && Object.hasOwn(params, name) ? params[name] : undefined;
      if (value === undefined || value === '') throw new TypeError(`route ${route}: path parameter "${name}" is missing`);
      const text = String(value);
      // "." and ".." are left as they are by encodeURIComponent, and every URL parser (got's WHATWG
      // URL, the server's router) would resolve them, turning /users/../profile into /profile.
      if (text === '.' || text === '..') throw new TypeError(`route ${route}: path parameter "${name}" is "${text}", a path traversal segment`);
      out += encodeURIComponent(text) + parts[i + 1]!;
    }
    return out;
  };
}
