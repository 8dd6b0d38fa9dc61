import { configError } from '../errors.ts';
import { didYouMean } from '../did-you-mean.ts';
import type { HeaderRecord } from '../pipeline/types.ts';
import type { MeshCore } from './call.ts';
import { toHeaderRecord } from './headers.ts';

/** What `mesh.client(name, { … })` adds to every call of that client, as got's and ky's extend() do. */
export interface ClientDefaults {
  /** Sent with every call (auth, user-agent); a header given to a call replaces the one of the same name. */
  headers?: HeadersInit | Record<string, string | string[] | undefined>;
  /** Milliseconds for the whole call unless the call gives its own; can only shorten the policy's `timeout`. */
  timeout?: number;
  /** Never set: a defaults object is told from a defineService() contract by having no routes. */
  routes?: never;
}

/** One client's service and its defaults, checked and converted once. */
export interface ClientScope {
  readonly core: MeshCore;
  readonly service: string;
  /** Lower-case names; undefined when the client has no default headers. */
  readonly headers: HeaderRecord | undefined;
  readonly timeout: number | undefined;
}

const KEYS = ['headers', 'timeout'];

export function clientScope(core: MeshCore, service: string, defaults: ClientDefaults | undefined): ClientScope {
  if (defaults === undefined) return { core, service, headers: undefined, timeout: undefined };
  const where = `mesh.client(${JSON.stringify(service)}, defaults)`;
  if (typeof defaults !== 'object' || defaults === null) throw configError(`${where}: expected an object of defaults or a defineService() contract`);
  for (const key of Object.keys(defaults)) {
    if (!KEYS.includes(key)) throw configError(`${where}.${key}: unknown key${didYouMean(key, KEYS)}; known keys: ${KEYS.join(', ')}`);
  }
  const { timeout } = defaults;
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && Number.isFinite(timeout))) {
    throw configError(`${where}.timeout: expected a positive number of milliseconds, got ${String(timeout)}`);
  }
  const headers = toHeaderRecord(defaults.headers);
  return { core, service, headers: Object.keys(headers).length > 0 ? headers : undefined, timeout };
}

/** A call's headers over the client's defaults: the call's value wins for a name both set. */
export function callHeaders(scope: ClientScope, init: Parameters<typeof toHeaderRecord>[0]): HeaderRecord {
  const headers = toHeaderRecord(init);
  const defaults = scope.headers;
  if (defaults !== undefined) for (const name in defaults) headers[name] ??= defaults[name]!;
  return headers;
}
