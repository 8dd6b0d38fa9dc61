import { configError } from '../errors.ts';
import type { MeshEvents } from '../events.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { CallsInFlight } from './calls-in-flight.ts';
import { rejectingThrows } from './compose.ts';
import type { CallContext, Middleware } from './types.ts';

/**
 * What one mesh shares with every layer, and nothing more: per-destination state (budgets, breakers,
 * balancers) belongs to the layer that uses it, created by the layer's own factory.
 */
export interface LayerDeps {
  readonly events: MeshEvents;
  /** Jitter source; tests pass a fixed one. */
  readonly random: () => number;
  /** Aborted by mesh.close(): a layer releases its per-destination state (and any shared timer) then. */
  readonly shutdown: AbortSignal;
  /** The calls under way, which mesh.close() waits on and then aborts; the deadline layer keeps it. */
  readonly calls: CallsInFlight<CallContext>;
  /**
   * Calls `listener` with each policy installed from now on, so that a layer can drop the state of
   * services that left the policy; returns the unsubscriber.
   */
  readonly onPolicy: (listener: (policy: CompiledPolicy) => void) => () => void;
}

/** A built-in layer of a stack. `why` is the reason for its position. */
export interface Layer {
  readonly name: string;
  readonly why: string;
  readonly create: (deps: LayerDeps) => Middleware;
}

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

/** User code joins the stack rejecting where it would throw, so that the layers around it settle what they hold. */
const guarded = (middleware: Middleware): Middleware => (next) => rejectingThrows(middleware(next));

/**
 * The stack for one mesh: the layers with the user's middleware placed among them. A layer not in
 * `builtIn` (one of the user's own, given as createMesh option layers) is guarded as a middleware is.
 */
export function buildStack(layers: readonly Layer[], deps: LayerDeps, custom: readonly MiddlewareSpec[] = [], builtIn: ReadonlySet<Layer> = new Set()): StackEntry[] {
  const stack: StackEntry[] = layers.map((layer) => {
    const middleware = layer.create(deps);
    return { name: layer.name, middleware: builtIn.has(layer) ? middleware : guarded(middleware) };
  });
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
    stack.splice(index, 0, { name: spec.name, middleware: guarded(spec.use), after: spec.after });
  }
  return stack;
}
