import { boolean, checkedString, duration, either, integer, list, map, number, object, oneOf, oneOrList, size, status, string } from './schema.ts';
import type { Schema } from './schema.ts';
import { MAX_TIMER_MS } from './duration.ts';

const METHOD = string(/^[A-Z]+$/, 'an HTTP method in capitals, such as GET');
const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/**
 * A service name is also the host of `http://<name>/…` URLs, and URL hosts are lower-cased, so a
 * service name is lower case: "Payments" could never be matched by mesh.fetch.
 */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]*$/;
export const SERVICE_NAME_RULE =
  'lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (it is the host of http://<name>/ URLs, which are case-insensitive)';
const CALLER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const SPIFFE_ID = /^spiffe:\/\/[^\s/]+(\/\S*)?$/;
/** A DNS name with at least one dot (a bare word would be a service name); the certificate may hold a wildcard for it. */
const DNS_NAME = /^([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$/;

/** The knobs every layer (defaults, service, route) may set. */
const settings: Record<string, Schema> = {
  timeout: duration(1),
  perTryTimeout: duration(1),
  connectTimeout: duration(1),
  bodyTimeout: duration(1),
  idempotent: boolean,
  jsonBodyLimit: size(1),
  retry: object(
    {
      attempts: integer(1, 10),
      backoff: object({ base: duration(), max: duration() }),
      on: list(either('connect-failure, reset, per-try-timeout or an HTTP status', oneOf('connect-failure', 'reset', 'per-try-timeout'), status)),
      methods: list(METHOD),
      budget: object({ ratio: number(0, 1), minPerSecond: number(0), ttl: duration(1_000) }),
      retryAfter: object({ honor: boolean, max: duration() }),
    },
    { nullable: true },
  ),
  circuitBreaker: object(
    {
      errorThresholdPercentage: number(1, 100),
      volumeThreshold: integer(1),
      window: duration(100),
      resetTimeout: duration(1),
      failOn: list(either('"5xx" or an HTTP status', oneOf('5xx'), status)),
    },
    { nullable: true },
  ),
  outlierDetection: object(
    {
      consecutiveFailures: integer(1),
      baseEjectionTime: duration(1),
      maxEjectionTime: duration(1),
      maxEjectedPercent: number(0, 100),
    },
    { nullable: true },
  ),
  loadBalancer: object({ strategy: oneOf('peak-ewma', 'round-robin'), initialRtt: duration(1), decay: duration(1) }),
  concurrency: object({ max: integer(1), queue: integer(0) }),
  rateLimit: object({ rps: number(0.001), burst: integer(1) }, { nullable: true }),
  hedge: object({ delay: either(`a duration of at most ${MAX_TIMER_MS}ms or "p95"`, duration(1), oneOf('p95')), max: integer(1, 3) }, { nullable: true }),
  tls: object({ mode: oneOf('strict', 'permissive', 'disabled') }),
};

/** What is wrong with an http(s) endpoint URL, or undefined when it is a usable origin and base path. */
function endpointProblem(value: string): string | undefined {
  const url = URL.parse(value);
  if (url === null) return 'the URL does not parse: check the host, the port (1-65535) and any %-escapes';
  if (url.username !== '' || url.password !== '') return 'credentials in an endpoint URL are not allowed; send them in a header';
  if (url.search !== '' || url.hash !== '') return 'an endpoint is an origin and an optional base path, without ? or #';
  return undefined;
}

const endpoint = checkedString(/^https?:\/\/[^/\s]+(\/\S*)?$/, 'an http:// or https:// URL', endpointProblem);

const SERVICE = string(SERVICE_NAME, `a service name: ${SERVICE_NAME_RULE}`);
const PERCENT = number(0, 100);
/** A header or query value: exact, or { regex } (checked for safety by lib/policy/routing.ts). */
const valueMatch = either('a string, or { regex: "<pattern>" }', string(), object({ regex: string() }, { required: ['regex'] }));
const HEADER_NAME = { pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, describe: 'an HTTP header name' };

const matchBlock = object({
  method: either('a method or a list of methods', METHOD, list(METHOD, 1)),
  path: string(/^\//, 'a path starting with "/"'),
  prefix: string(/^\//, 'a path prefix starting with "/"'),
  headers: map(valueMatch, HEADER_NAME),
  query: map(valueMatch),
});

/** Where calls go (lib/policy/routing.ts): service or route level, not defaults. */
const routing: Record<string, Schema> = {
  split: list(object({ service: SERVICE, weight: integer(0, 1_000_000) }, { required: ['service', 'weight'] }), 1),
  fault: object(
    {
      abort: object({ percent: PERCENT, status }, { required: ['percent', 'status'] }),
      delay: object({ percent: PERCENT, duration: duration(1) }, { required: ['percent', 'duration'] }),
    },
    { nullable: true },
  ),
  mirror: object({ service: SERVICE, percent: PERCENT }, { nullable: true, required: ['service'] }),
};

const route = object(
  {
    ...settings,
    ...routing,
    name: string(ROUTE_NAME, 'a route name of letters, digits, ".", "_" or "-"'),
    match: oneOrList(matchBlock),
    backend: SERVICE,
  },
  { required: ['name', 'match'] },
);

const service = object({
  ...settings,
  ...routing,
  endpoints: list(endpoint, 1),
  baseUrl: endpoint,
  identity: either('a SPIFFE ID such as "spiffe://meshfetch.local/payments" or a DNS name such as "payments.internal"', string(SPIFFE_ID), string(DNS_NAME)),
  allow: list(either('a service name, a SPIFFE ID or "*"', string(CALLER_NAME), string(SPIFFE_ID), oneOf('*'))),
  routes: list(route),
});

export const POLICY_DOCUMENT_SCHEMA: Schema = object(
  {
    apiVersion: oneOf('meshfetch/v1'),
    revision: string(),
    defaults: object(settings),
    services: map(service, { pattern: SERVICE_NAME, describe: SERVICE_NAME_RULE }),
  },
  { required: ['apiVersion'] },
);

