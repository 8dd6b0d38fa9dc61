import type { Layer } from './pipeline/layers.ts';
import { deadlineLayer } from './resilience/deadline.ts';
import { propagationLayer } from './resilience/propagation.ts';
import { retryLayer } from './resilience/retry.ts';
import { endpointLayer } from './routing/endpoint.ts';

/**
 * The default stack, outermost first; docs/architecture.md mirrors it. This is the one place that
 * knows every layer; each layer knows only the next handler.
 */
export const DEFAULT_STACK: readonly Layer[] = [
  {
    name: 'deadline',
    why: 'outermost: one deadline and one abort signal bound every attempt, backoff and the body',
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
    why: 'innermost: stamps the attempt number and the time left, as they are when the attempt is sent',
    create: () => propagationLayer,
  },
];
