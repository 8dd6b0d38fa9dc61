import type { Layer } from './pipeline/layers.ts';
import { deadlineLayer } from './resilience/deadline.ts';
import { propagationLayer } from './resilience/propagation.ts';
import { retryLayer } from './resilience/retry.ts';
import { endpointLayer } from './routing/endpoint.ts';
import { attemptTelemetryLayer } from './telemetry/attempt-telemetry.ts';
import { callTelemetryLayer } from './telemetry/call-telemetry.ts';

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
    why: 'outside retries: one deadline and one abort signal bound every attempt, backoff and the body',
    create: () => deadlineLayer,
  },
  {
    name: 'retry',
    why: 'inside the deadline, so backoff and every attempt (and hedge) fit in it; pays from the retry budget',
    create: retryLayer,
  },
  {
    name: 'endpoint',
    why: 'per attempt, so that a retry can land on another endpoint of the service',
    create: endpointLayer,
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
