import type { CallPolicy } from './types.ts';

/**
 * The built-in defaults, in force when no policy document says otherwise. Where each number comes
 * from is in docs/resilience.md and docs/policy.md.
 */
export const DEFAULT_POLICY: CallPolicy = Object.freeze<CallPolicy>({
  timeout: 10_000,
  perTryTimeout: 2_000,
  connectTimeout: 1_000, // Linkerd's outbound connect timeout
  bodyTimeout: 30_000, // idle time between two body chunks
  idempotent: false,
  jsonBodyLimit: 16 * 1024 * 1024, // a buffered body; gRPC's default message limit is 4 MiB
  retry: {
    attempts: 3,
    backoff: { base: 25, max: 250 }, // Linkerd and Envoy: 25 ms doubling to 250 ms, full jitter
    on: ['connect-failure', 'reset', 'per-try-timeout', 429, 502, 503, 504],
    methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
    budget: { ratio: 0.2, minPerSecond: 10, ttl: 10_000 }, // Finagle and Linkerd
    retryAfter: { honor: true, max: 30_000 },
  },
  circuitBreaker: { errorThresholdPercentage: 50, volumeThreshold: 20, window: 10_000, resetTimeout: 5_000, failOn: ['5xx'] },
  // Envoy's outlier detection: 5 consecutive failures, 30 s × times ejected up to 300 s, ≤ 10 % ejected
  outlierDetection: { consecutiveFailures: 5, baseEjectionTime: 30_000, maxEjectionTime: 300_000, maxEjectedPercent: 10 },
  // Linkerd's balancer: power of two choices over peak-EWMA, 30 ms before the first answer, 10 s decay
  loadBalancer: { strategy: 'peak-ewma', initialRtt: 30, decay: 10_000 },
  concurrency: { max: 1024, queue: 8192 },
  rateLimit: null,
  hedge: null,
  tls: { mode: 'permissive' },
});
