/**
 * The policy document as written (durations are strings such as "250ms"), and the resolved per-call
 * policy that middlewares read (durations in milliseconds).
 */

export type Duration = `${number}${'ms' | 's' | 'm' | 'h'}`;
export type RetryCondition = 'connect-failure' | 'reset' | 'per-try-timeout' | number;
export type TlsMode = 'strict' | 'permissive' | 'disabled';
export type LoadBalancerStrategy = 'peak-ewma' | 'round-robin';

/** Every knob a layer of the document (defaults, a service, a route) may set. */
export interface PolicySettings {
  timeout?: Duration;
  perTryTimeout?: Duration;
  connectTimeout?: Duration;
  bodyTimeout?: Duration;
  idempotent?: boolean;
  /** The largest 2xx body a JSON helper or typed route reads: bytes, or a size such as "16MiB". */
  jsonBodyLimit?: number | `${number}${'B' | 'KiB' | 'MiB' | 'GiB'}`;
  retry?: {
    attempts?: number;
    backoff?: { base?: Duration; max?: Duration };
    on?: RetryCondition[];
    methods?: string[];
    budget?: { ratio?: number; minPerSecond?: number; ttl?: Duration };
    retryAfter?: { honor?: boolean; max?: Duration };
  } | null;
  circuitBreaker?: {
    errorThresholdPercentage?: number;
    volumeThreshold?: number;
    window?: Duration;
    resetTimeout?: Duration;
    failOn?: ('5xx' | number)[];
  } | null;
  outlierDetection?: {
    consecutiveFailures?: number;
    baseEjectionTime?: Duration;
    maxEjectionTime?: Duration;
    maxEjectedPercent?: number;
  } | null;
  loadBalancer?: { strategy?: LoadBalancerStrategy; initialRtt?: Duration; decay?: Duration };
  concurrency?: { max?: number; queue?: number };
  rateLimit?: { rps?: number; burst?: number } | null;
  hedge?: { delay?: Duration | 'p95'; max?: number } | null;
  tls?: { mode?: TlsMode };
}

/** A header or query value to match: exactly, or by a regular expression (docs/routing.md says which are refused). */
export type ValueMatchDocument = string | { regex: string };

/** One match block; a route matches a call when any of its blocks does (docs/routing.md). */
export interface RouteMatchDocument {
  method?: string | string[];
  /** A path template: "/charges/:id", or "/charges/*" for the rest of the path. */
  path?: string;
  /** A path prefix, matched at a "/" boundary; give path or prefix (neither: every path). */
  prefix?: string;
  headers?: Record<string, ValueMatchDocument>;
  query?: Record<string, ValueMatchDocument>;
}

/** Where calls go, at service or route level (docs/routing.md). */
export interface RoutingSettings {
  split?: { service: string; weight: number }[];
  fault?: { abort?: { percent: number; status: number }; delay?: { percent: number; duration: Duration } } | null;
  mirror?: { service: string; percent?: number } | null;
}

export interface RouteDocument extends PolicySettings, RoutingSettings {
  name: string;
  match: RouteMatchDocument | RouteMatchDocument[];
  /** The one-entry split: every call on this route goes to that service. */
  backend?: string;
}

export interface ServiceDocument extends PolicySettings, RoutingSettings {
  endpoints?: string[];
  baseUrl?: string;
  identity?: string;
  allow?: string[];
  routes?: RouteDocument[];
}

export interface PolicyDocument {
  apiVersion: 'meshfetch/v1';
  /** Set by whoever publishes the document; reported back by clients that apply it. */
  revision?: string;
  defaults?: PolicySettings;
  services?: Record<string, ServiceDocument>;
}

export interface RetryPolicy {
  attempts: number;
  backoff: { base: number; max: number };
  on: readonly RetryCondition[];
  methods: readonly string[];
  budget: { ratio: number; minPerSecond: number; ttl: number };
  retryAfter: { honor: boolean; max: number };
}

export interface CircuitBreakerPolicy {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  window: number;
  resetTimeout: number;
  /** Answers that count as failures: "5xx" (any 500–599) or single statuses. */
  failOn: readonly ('5xx' | number)[];
}

/** Per-endpoint failure accrual: when an endpoint is taken out of load balancing, and for how long. */
export interface OutlierDetectionPolicy {
  consecutiveFailures: number;
  baseEjectionTime: number;
  maxEjectionTime: number;
  maxEjectedPercent: number;
}

export interface LoadBalancerPolicy {
  strategy: LoadBalancerStrategy;
  initialRtt: number;
  decay: number;
}

/** The policy in force for one call: defaults, then the service, then the route, merged. */
export interface CallPolicy {
  timeout: number;
  perTryTimeout: number;
  connectTimeout: number;
  bodyTimeout: number;
  idempotent: boolean;
  /** Bytes. */
  jsonBodyLimit: number;
  retry: RetryPolicy | null;
  circuitBreaker: CircuitBreakerPolicy | null;
  outlierDetection: OutlierDetectionPolicy | null;
  loadBalancer: LoadBalancerPolicy;
  concurrency: { max: number; queue: number };
  rateLimit: { rps: number; burst: number } | null;
  hedge: { delay: number | 'p95'; max: number } | null;
  tls: { mode: TlsMode };
}
