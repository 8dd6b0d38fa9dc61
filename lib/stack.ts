import type { Layer } from './pipeline/layers.ts';
import { circuitBreakerLayer } from './resilience/circuit-breaker-layer.ts';
import { concurrencyLayer } from './resilience/concurrency-limit.ts';
import { deadlineLayer } from './resilience/deadline.ts';
import { propagationLayer } from './resilience/propagation.ts';
import { rateLimitLayer } from './resilience/rate-limit.ts';
import { retryLayer } from './resilience/retry.ts';
import { endpointLayer } from './routing/endpoint.ts';
import { faultLayer } from './routing/fault.ts';
import { mirrorLayer } from './routing/mirror.ts';
import { redirectLayer } from './routing/redirect.ts';
import { splitLayer } from './routing/split.ts';
import { attemptTelemetryLayer } from './telemetry/attempt-telemetry.ts';
import { callTelemetryLayer } from './telemetry/call-telemetry.ts';
import { tlsModeLayer } from './tls/mode-layer.ts';

/**
 * The default stack, outermost first; docs/architecture.md mirrors it. This is the one place that
 * knows every layer; each layer knows only the next handler.
 */
export const DEFAULT_STACK: readonly Layer[] = [
  {
    name: 'telemetry',
    why: 'outermost: the call span and call duration cover the call as the caller sees it, deadline and retries included',
    create: callTelemetryLayer,
  },
  {
    name: 'deadline',
    why: 'outside retries: one deadline and one abort signal bound every attempt, backoff and the body; mesh.close() aborts through it',
    create: deadlineLayer,
  },
  {
    name: 'rate-limit',
    why: 'outside the breaker: a refused call never reaches it, so it is not counted as a failure; a call pays one token however many attempts it takes',
    create: rateLimitLayer,
  },
  {
    name: 'concurrency',
    why: 'outside the breaker and the retry: a call holds one slot across its attempts, and a full bulkhead is not a breaker failure; it waits in its queue within the deadline',
    create: concurrencyLayer,
  },
  {
    name: 'circuit-breaker',
    why: 'outside the retry: it counts each call once, with its final outcome (retries do not count twice), and an open circuit fails the call before any attempt, so retries cannot hammer it',
    create: circuitBreakerLayer,
  },
  {
    name: 'mirror',
    why: 'outside the redirects and the retry, inside the limits and the breaker: a copy is sent once per call, never retried, and takes none of the real call\'s slots or breaker counts',
    create: mirrorLayer,
  },
  {
    name: 'redirect',
    why: 'inside the limits and the breaker, so a redirect chain is one call (one token, one slot, one outcome); outside retry, so each hop is a request of its own with its own retries and endpoint',
    create: () => redirectLayer,
  },
  {
    name: 'retry',
    why: 'inside the deadline, so backoff and every attempt (and hedge) fit in it; pays from the retry budget',
    create: retryLayer,
  },
  {
    name: 'split',
    why: 'inside the retry, outside the endpoint: each attempt picks a backend of the traffic split (a retry may go to another), then the endpoint layer balances over that backend\'s endpoints',
    create: splitLayer,
  },
  {
    name: 'fault',
    why: 'inside the retry and the breaker, before anything leaves: an injected abort or delay is seen by retries and breakers as a real one would be, and an abort opens no socket',
    create: faultLayer,
  },
  {
    name: 'endpoint',
    why: 'inside the retry, per attempt: each attempt is balanced, an ejected endpoint is skipped and a retry prefers another endpoint than the one that failed',
    create: endpointLayer,
  },
  {
    name: 'tls',
    why: 'after the endpoint pick, so that tls.mode strict sees the origin this attempt goes to, before anything is sent',
    create: () => tlsModeLayer,
  },
  {
    name: 'propagation',
    why: 'per attempt, last before the wire: stamps the attempt number and the time left, as they are when the attempt is sent',
    create: () => propagationLayer,
  },
  {
    name: 'attempt-telemetry',
    why: 'innermost, just above the transport: one CLIENT span per attempt on the wire (hedges included), timed as close to the network as possible, its context injected into the headers sent',
    create: attemptTelemetryLayer,
  },
];

/** The layers meshfetch ships: buildStack guards any other layer as it guards a user's middleware. */
export const BUILT_IN_LAYERS: ReadonlySet<Layer> = new Set(DEFAULT_STACK);
