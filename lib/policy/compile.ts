import { configError } from '../errors.ts';
import { DEFAULT_POLICY } from './defaults.ts';
import { POLICY_DOCUMENT_SCHEMA } from './document-schema.ts';
import { isPlainObject, normalize } from './schema.ts';
import type { Problems } from './schema.ts';
import type { LineLocator } from './source-lines.ts';
import type { CallPolicy } from './types.ts';
import { NO_ROUTING } from '../routing/actions.ts';
import type { RoutingActions } from '../routing/actions.ts';
import type { CompiledMatch } from '../routing/route-match.ts';
import { compileMatches, compileRouting } from './routing.ts';

export interface Endpoint {
  /** "https://10.0.0.7:8443" */
  readonly origin: string;
  /** Path prefix from the endpoint URL without a trailing "/", usually "". */
  readonly basePath: string;
  /** origin + basePath: names the endpoint in load-balancing state and events. */
  readonly url: string;
}

/** A service reachable at an origin, under a base path (several services may share one origin). */
export interface OriginOwner {
  readonly basePath: string;
  readonly service: CompiledService;
}

export interface CompiledRoute {
  readonly name: string;
  readonly policy: CallPolicy;
  /** Split, fault and mirror for calls on this route (the service's unless the route sets its own). */
  readonly routing: RoutingActions;
}

export interface CompiledService {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly identity: string | undefined;
  readonly allow: readonly string[] | undefined;
  readonly policy: CallPolicy;
  readonly routes: readonly CompiledRoute[];
  readonly routesByName: ReadonlyMap<string, CompiledRoute>;
  /** Every route's match blocks, most specific first (lib/routing/route-match.ts): the first that matches wins. */
  readonly matches: readonly CompiledMatch<CompiledRoute>[];
  /** Split, fault and mirror for calls that match no route. */
  readonly routing: RoutingActions;
}

/** A validated document, merged ahead of time so that a call only looks its policy up. */
export interface CompiledPolicy {
  readonly revision: string | undefined;
  readonly defaults: CallPolicy;
  readonly services: ReadonlyMap<string, CompiledService>;
  /**
   * Every endpoint origin and the services behind it, longest base path first, to recognise a URL as
   * a call to a known service (lib/routing/owner.ts picks one).
   */
  readonly byOrigin: ReadonlyMap<string, readonly OriginOwner[]>;
}

type Layer = Record<string, unknown>;

/** What a feature that is off (null) in the parent starts from when a child switches it on. */
const FEATURE_BASE: Record<string, unknown> = {
  retry: DEFAULT_POLICY.retry,
  circuitBreaker: DEFAULT_POLICY.circuitBreaker,
  outlierDetection: DEFAULT_POLICY.outlierDetection,
  rateLimit: {},
  hedge: { max: 1 },
};

/** Objects merge key by key; arrays and scalars replace; null switches a feature off. */
function merge(base: unknown, overlay: unknown): unknown {
  if (!isPlainObject(overlay) || !isPlainObject(base)) return overlay;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) out[key] = merge(base[key], value);
  return out;
}

/**
 * rateLimit objects whose burst was filled in from rps (not written in the document): a child layer
 * merges onto them without that burst, so a child that changes rps gets a burst derived from its rps.
 */
const derivedBurst = new WeakSet<object>();

function applyLayer(base: CallPolicy, layer: Layer, path: string, problems: Problems): CallPolicy {
  const out: Record<string, unknown> = { ...base };
  for (const key of Object.keys(DEFAULT_POLICY)) {
    const value = layer[key];
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      out[key] = value;
      continue;
    }
    const inherited = out[key] ?? FEATURE_BASE[key];
    out[key] = merge(isPlainObject(inherited) && derivedBurst.has(inherited) ? { ...inherited, burst: undefined } : inherited, value);
  }
  const policy = out as unknown as CallPolicy;
  checkComplete(policy, layer, path, problems);
  return policy;
}

/**
 * Checks the keys this layer wrote, once merged. A key the layer left alone is its parent's, checked
 * (and reported, at the path where it was written) when the parent was compiled.
 */
function checkComplete(policy: CallPolicy, layer: Layer, path: string, problems: Problems): void {
  const at = (key: string): string => (path ? `${path}.${key}` : key);
  if (policy.rateLimit && layer.rateLimit !== undefined) {
    if (policy.rateLimit.rps === undefined) problems.push(`${at('rateLimit.rps')}: required when rateLimit is on`);
    else if (policy.rateLimit.burst === undefined) {
      policy.rateLimit.burst = Math.max(1, Math.ceil(policy.rateLimit.rps));
      derivedBurst.add(policy.rateLimit);
    }
  }
  if (policy.hedge && layer.hedge !== undefined && policy.hedge.delay === undefined) problems.push(`${at('hedge.delay')}: required when hedge is on`);
  const outliers = policy.outlierDetection;
  if (outliers && layer.outlierDetection !== undefined && outliers.baseEjectionTime > outliers.maxEjectionTime) {
    problems.push(`${at('outlierDetection')}: baseEjectionTime (${outliers.baseEjectionTime}ms) is larger than maxEjectionTime (${outliers.maxEjectionTime}ms)`);
  }
  if (policy.retry && layer.retry !== undefined && policy.retry.backoff.base > policy.retry.backoff.max) {
    problems.push(`${at('retry.backoff')}: base (${policy.retry.backoff.base}ms) is larger than max (${policy.retry.backoff.max}ms)`);
  }
}

/** "/charges/:id" matches "/charges/42"; a trailing "/*" matches any rest of the path. */
export function compilePathPattern(pattern: string): RegExp {
  const wildcard = pattern.endsWith('/*');
  const body = (wildcard ? pattern.slice(0, -2) : pattern)
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}${wildcard ? '(?:/.*)?' : '/?'}$`);
}

/** `url` passed the schema's endpoint check, so it parses. */
function parseEndpoint(url: string): Endpoint {
  const parsed = new URL(url);
  const basePath = parsed.pathname.replace(/\/+$/, '');
  return { origin: parsed.origin, basePath, url: parsed.origin + basePath };
}

function compileService(name: string, doc: Layer, defaults: CallPolicy, services: Record<string, Layer>, problems: Problems): CompiledService {
  const path = `services.${name}`;
  if (doc.endpoints && doc.baseUrl) problems.push(`${path}: set endpoints or baseUrl, not both`);
  const urls = (doc.endpoints as string[] | undefined) ?? (doc.baseUrl ? [doc.baseUrl as string] : []);
  const policy = applyLayer(defaults, doc, path, problems);
  const routing = compileRouting(doc, NO_ROUTING, name, path, services, problems);
  const routeDocs = (doc.routes as Layer[] | undefined) ?? [];
  const routes = routeDocs.map((route, i): CompiledRoute => ({
    name: route.name as string,
    policy: applyLayer(policy, route, `${path}.routes[${i}]`, problems),
    routing: compileRouting(route, routing, name, `${path}.routes[${i}]`, services, problems),
  }));
  const matches = compileMatches(routeDocs.map((route, i) => ({ doc: route, target: routes[i]! })), path, compilePathPattern, problems);
  const routesByName = new Map<string, CompiledRoute>();
  routes.forEach((route, i) => {
    if (routesByName.has(route.name)) problems.push(`${path}.routes[${i}].name: "${route.name}" is used twice`);
    routesByName.set(route.name, route);
  });
  return {
    name,
    endpoints: urls.map(parseEndpoint),
    identity: doc.identity as string | undefined,
    allow: doc.allow as string[] | undefined,
    policy,
    routes,
    routesByName,
    matches,
    routing,
  };
}

/**
 * Validates a policy document (parsed YAML or JSON) and merges it into per-service and per-route
 * policies. Throws one MESHFETCH_CONFIG error listing every problem with its path; `source` says
 * where the document came from (a file path, "the control plane"), and `locate`, given the document's
 * text, adds the line of each problem.
 */
export function compilePolicy(raw: unknown, source: string, locate?: () => LineLocator): CompiledPolicy {
  const problems: Problems = [];
  const doc = normalize(raw, POLICY_DOCUMENT_SCHEMA, '', problems) as Layer | undefined;
  if (problems.length === 0 && doc) {
    const defaults = applyLayer(DEFAULT_POLICY, (doc.defaults as Layer | undefined) ?? {}, 'defaults', problems);
    const services = new Map<string, CompiledService>();
    const byOrigin = new Map<string, OriginOwner[]>();
    const serviceDocs = (doc.services as Record<string, Layer> | undefined) ?? {};
    for (const [name, serviceDoc] of Object.entries(serviceDocs)) {
      const compiled = compileService(name, serviceDoc, defaults, serviceDocs, problems);
      services.set(name, compiled);
      for (const { origin, basePath } of compiled.endpoints) {
        let owners = byOrigin.get(origin);
        if (!owners) byOrigin.set(origin, (owners = []));
        if (!owners.some((o) => o.service === compiled && o.basePath === basePath)) owners.push({ basePath, service: compiled });
      }
    }
    // Longest base path first; equal ones keep document order (the first service wins, see owner.ts).
    for (const owners of byOrigin.values()) owners.sort((a, b) => b.basePath.length - a.basePath.length);
    if (problems.length === 0) return { revision: doc.revision as string | undefined, defaults, services, byOrigin };
  }
  throw configError(`invalid policy from ${source}:\n  ${withLines(problems, locate?.()).join('\n  ')}`);
}

/** Each problem ("path: what is wrong") with the line of its path in the text, when known. */
function withLines(problems: Problems, locate: LineLocator | undefined): Problems {
  if (!locate) return problems;
  return problems.map((problem) => {
    const line = locate(problem.slice(0, problem.indexOf(': ')).replace('(document)', ''));
    return line === undefined ? problem : `${problem} (line ${line})`;
  });
}

/** The policy in force when no document was given: built-in defaults and no known services. */
export const BUILT_IN_POLICY: CompiledPolicy = compilePolicy({ apiVersion: 'meshfetch/v1' }, 'built-in defaults');
