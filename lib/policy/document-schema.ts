import { boolean, duration, either, integer, list, map, number, object, oneOf, status, string } from './schema.ts';
import type { Schema } from './schema.ts';

const METHOD = string(/^[A-Z]+$/, 'an HTTP method in capitals, such as GET');
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The knobs every layer (defaults, service, route) may set. */
const settings: Record<string, Schema> = {
  timeout: duration(1),
  perTryTimeout: duration(1),
  connectTimeout: duration(1),
  bodyTimeout: duration(1),
  idempotent: boolean,
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
    },
    { nullable: true },
  ),
  concurrency: object({ max: integer(1), queue: integer(0) }),
  rateLimit: object({ rps: number(0.001), burst: integer(1) }, { nullable: true }),
  hedge: object({ delay: either('a duration or "p95"', duration(1), oneOf('p95')), max: integer(1, 3) }, { nullable: true }),
  tls: object({ mode: oneOf('strict', 'permissive', 'disabled') }),
};

const endpoint = string(/^https?:\/\/[^/\s]+(\/\S*)?$/, 'an http:// or https:// URL');

const route = object(
  {
    ...settings,
    name: string(SERVICE_NAME, 'a route name of letters, digits, ".", "_" or "-"'),
    match: object({ method: either('a method or a list of methods', METHOD, list(METHOD, 1)), path: string(/^\//, 'a path starting with "/"') }, { required: ['path'] }),
  },
  { required: ['name', 'match'] },
);

const service = object({
  ...settings,
  endpoints: list(endpoint, 1),
  baseUrl: endpoint,
  identity: string(/^spiffe:\/\/\S+$/, 'a SPIFFE ID such as "spiffe://meshfetch.local/payments"'),
  allow: list(string(SERVICE_NAME, 'a service name')),
  routes: list(route),
});

export const POLICY_DOCUMENT_SCHEMA: Schema = object(
  {
    apiVersion: oneOf('meshfetch/v1'),
    revision: string(),
    defaults: object(settings),
    services: map(service, { pattern: SERVICE_NAME, describe: 'letters, digits, ".", "_" or "-", starting with a letter or digit' }),
  },
  { required: ['apiVersion'] },
);

