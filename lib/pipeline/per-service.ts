import type { CompiledPolicy } from '../policy/compile.ts';
import type { LayerDeps } from './layers.ts';
import type { CallContext } from './types.ts';

/** Entries for services with endpoints in policy: bounded by the policy's size, this is a backstop (above the 10,000 destinations issue #7 measures). */
const MAX_KNOWN = 16_384;
/** Entries for any other name: absolute-URL clients, typos, names built from input. */
const MAX_UNKNOWN = 64;

/**
 * A layer's per-destination state, made on first use and bounded. A service with endpoints in the
 * policy in force gets its own entry, kept across policy revisions and dropped when a revision no
 * longer gives it endpoints; every other name shares a small least-recently-used set, so calls to
 * 100k made-up names keep at most MAX_UNKNOWN entries. Everything is released at mesh.close().
 */
export class PerService<T> {
  readonly #create: (service: string) => T;
  readonly #known = new Map<string, T>();
  readonly #unknown = new Map<string, T>();

  /** Without `deps` (a unit test), entries leave only by the bounds. */
  constructor(create: (service: string) => T, deps?: Pick<LayerDeps, 'onPolicy' | 'shutdown'>) {
    this.#create = create;
    if (deps) {
      const off = deps.onPolicy((policy) => this.#keepServicesOf(policy));
      deps.shutdown.addEventListener(
        'abort',
        () => {
          off();
          this.#known.clear();
          this.#unknown.clear();
        },
        { once: true },
      );
    }
  }

  get(ctx: Pick<CallContext, 'service' | 'endpoints'>): T {
    const known = ctx.endpoints.length > 0;
    const entries = known ? this.#known : this.#unknown;
    let state = entries.get(ctx.service);
    if (state !== undefined) {
      if (!known) {
        entries.delete(ctx.service); // most recently used goes last
        entries.set(ctx.service, state);
      }
      return state;
    }
    if (entries.size >= (known ? MAX_KNOWN : MAX_UNKNOWN)) entries.delete(entries.keys().next().value!);
    entries.set(ctx.service, (state = this.#create(ctx.service)));
    return state;
  }

  /** Entries held. */
  get size(): number {
    return this.#known.size + this.#unknown.size;
  }

  #keepServicesOf(policy: CompiledPolicy): void {
    for (const name of this.#known.keys()) {
      if (!policy.services.get(name)?.endpoints.length) this.#known.delete(name);
    }
  }
}
