import { configError } from '../errors.ts';
import type { MeshEvents } from '../events.ts';
import { deadlineLayer } from '../resilience/deadline.ts';
import type { LatencyTracker } from '../resilience/latency.ts';
import { propagationLayer } from '../resilience/propagation.ts';
import { retryLayer } from '../resilience/retry.ts';
import type { RetryBudgets } from '../resilience/retry-budget.ts';
import { endpointLayer } from '../routing/endpoint.ts';
import type { Middleware } from './types.ts';

/** What one mesh shares with its layers: events, and state kept per destination. */
export interface LayerDeps {
  readonly events: MeshEvents;
  readonly budgets: RetryBudgets;
  readonly latency: LatencyTracker;
  /** Jitter source; tests pass a fixed one. */
  readonly random?: () => number;
}

/** A built-in layer of the default stack. `why` is the reason for its position. */
export interface Layer {
  readonly name: string;
  readonly why: string;
  readonly create: (deps: LayerDeps) => Middleware;
}

/**
 * The default stack, outermost first; docs/architecture.md mirrors it. Planned layers slot in at the
 * positions the brief gives: telemetry outermost; retry, hedge, circuit-breaker, concurrency and
 * rate-limit between deadline and endpoint.
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

/** A user middleware and where it goes: before or after a named layer; innermost when neither. */
export interface MiddlewareSpec {
  readonly name: string;
  readonly use: Middleware;
  readonly before?: string;
  readonly after?: string;
}

export interface StackEntry {
  readonly name: string;
  readonly middleware: Middleware;
  /** The layer a user middleware was placed after, if any. */
  readonly after?: string | undefined;
}

/** The stack for one mesh: the built-in layers with the user's middleware placed among them. */
export function buildStack(layers: readonly Layer[], deps: LayerDeps, custom: readonly MiddlewareSpec[] = []): StackEntry[] {
  const stack: StackEntry[] = layers.map((layer) => ({ name: layer.name, middleware: layer.create(deps) }));
  for (const [i, spec] of custom.entries()) {
    const where = `createMesh option middleware[${i}]`;
    if (typeof spec?.use !== 'function' || typeof spec.name !== 'string' || spec.name === '') {
      throw configError(`${where}: expected { name: string, use: (next) => handler, before?: string, after?: string }`);
    }
    if (stack.some((entry) => entry.name === spec.name)) throw configError(`${where}: the name "${spec.name}" is taken`);
    if (spec.before !== undefined && spec.after !== undefined) throw configError(`${where}: give before or after, not both`);
    const anchor = spec.before ?? spec.after;
    let index = stack.length;
    if (anchor !== undefined) {
      const at = stack.findIndex((entry) => entry.name === anchor);
      if (at === -1) {
        throw configError(`${where}.${spec.before === undefined ? 'after' : 'before'}: no layer named "${anchor}" (layers: ${stack.map((e) => e.name).join(', ')})`);
      }
      index = spec.before === undefined ? at + 1 : at;
      // Several middlewares after the same layer keep the order they were given in.
      while (spec.after !== undefined && stack[index]?.after === spec.after) index++;
    }
    stack.splice(index, 0, { name: spec.name, middleware: spec.use, after: spec.after });
  }
  return stack;
}
