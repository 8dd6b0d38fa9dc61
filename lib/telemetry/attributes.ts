import { ErrorCode, MeshError } from '../errors.ts';
import type { Outcome } from '../events.ts';

/**
 * Attribute names: the stable HTTP client semantic conventions, and meshfetch's own under `meshfetch.`.
 * Spelled out here so that the library needs @opentelemetry/api alone at run time.
 */
export const ATTR = {
  method: 'http.request.method',
  methodOriginal: 'http.request.method_original',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  urlFull: 'url.full',
  status: 'http.response.status_code',
  errorType: 'error.type',
  resendCount: 'http.request.resend_count',
  caller: 'meshfetch.caller',
  service: 'meshfetch.service',
  /** The service an attempt was actually sent to, when a traffic split chose another than meshfetch.service. */
  backend: 'meshfetch.backend',
  route: 'meshfetch.route',
  attempts: 'meshfetch.attempts',
  giveUp: 'meshfetch.give_up',
  limit: 'meshfetch.limit',
  circuitState: 'meshfetch.circuit.state',
  certificateState: 'meshfetch.certificate.state',
} as const;

/** The methods semantic conventions know; any other is reported as `_OTHER`, so a typo cannot mint a label. */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);

export function knownMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** `{method} {route}`: the route name from a contract or policy, never the path; `{method}` without one. */
export function spanName(method: string, route: string | undefined): string {
  const known = knownMethod(method);
  const verb = known === '_OTHER' ? 'HTTP' : known;
  return route === undefined ? verb : `${verb} ${route}`;
}


/** A response is a success for the golden metrics unless the upstream answered 5xx (as Linkerd counts). */
export function statusOutcome(status: number): Outcome {
  return status >= 500 ? 'failure' : 'success';
}

/** A low-cardinality name for a failure: the MeshError code, else a string `code`, else the class name. */
export function errorType(err: unknown): string {
  if (err instanceof MeshError) return err.code;
  if (err !== null && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(name)) return name;
  }
  return '_OTHER';
}

/** A failure that came from an abort nobody blames the upstream for: a caller's abort, a lost hedge. */
export function isCancellation(err: unknown, signal: AbortSignal | undefined): boolean {
  if (!signal?.aborted) return false;
  const reason: unknown = signal.reason;
  return !(reason instanceof MeshError && reason.code === ErrorCode.Timeout);
}

export interface ServerAddress {
  readonly address: string;
  readonly port: number;
}

const MAX_ORIGINS = 1_024;
const origins = new Map<string, ServerAddress>();

/** server.address and server.port of an origin, parsed once per origin (bounded: origins come from policy). */
export function serverAddress(origin: string): ServerAddress {
  let parsed = origins.get(origin);
  if (parsed) return parsed;
  const url = new URL(origin);
  const address = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  parsed = { address, port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80 };
  if (origins.size >= MAX_ORIGINS) origins.clear();
  origins.set(origin, parsed);
  return parsed;
}

/** url.full with every query value replaced, so tokens in a query string never reach a span. */
export function redactedUrl(origin: string, path: string): string {
  const q = path.indexOf('?');
  if (q === -1) return origin + path;
  const hash = path.indexOf('#', q);
  const query = path.slice(q + 1, hash === -1 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq === -1 ? pair : `${pair.slice(0, eq)}=REDACTED`;
    })
    .join('&');
  return `${origin}${path.slice(0, q)}?${redacted}`;
}
