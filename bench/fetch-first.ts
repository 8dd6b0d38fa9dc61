/**
 * Import this module BEFORE anything that imports the `undici` package.
 *
 * Node's global fetch and the undici package share one global dispatcher
 * (globalThis[Symbol.for('undici.globalDispatcher.2')] / '.1'). Whichever loads
 * first installs its Agent. If undici 8 (imported by bench/baselines.ts and by
 * meshfetch itself) came first, "global fetch" would run on undici 8's Agent
 * and we would no longer be measuring fetch as Node ships it. A first fetch of
 * a data: URL loads Node's bundled undici and installs its Agent first; we keep
 * a reference to that Agent's class so the fetch candidate can create a fresh,
 * default-configured one per run (exactly what a plain `fetch()` user gets).
 */
export const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.2');
export const LEGACY_GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

interface Closable {
  close(): Promise<void>;
}

await (await fetch('data:application/json,{}')).json();

const installed = (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] as Closable | undefined;
if (!installed) throw new Error('bench/fetch-first.ts: Node fetch did not install a global dispatcher');

/** The class of Node's bundled undici Agent (the default dispatcher of global fetch). */
export const NodeFetchAgent = installed.constructor as new () => Closable;

/** Install `agent` as the dispatcher of global fetch (both symbols, as Node does). */
export function setFetchDispatcher(agent: Closable): void {
  const g = globalThis as Record<symbol, unknown>;
  g[GLOBAL_DISPATCHER] = agent;
  g[LEGACY_GLOBAL_DISPATCHER] = agent;
}

/** The dispatcher global fetch uses right now. */
export function getFetchDispatcher(): unknown {
  return (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER];
}
