import type { CallContext } from './types.ts';

/** Entries for services with endpoints in policy: bounded by the policy's size, this is a backstop. */
const MAX_KNOWN = 4_096;
/** Entries for any other name: absolute-URL clients, typos, names built from input. */
const MAX_UNKNOWN = 64;

/**
 * A layer's per-destination state, made on first use and bounded. A service with endpoints in the
 * policy in force gets its own entry; every other name shares a small least-recently-used set, so
 * calls to 100k made-up names keep at most MAX_UNKNOWN entries. When either set is full the oldest
 * entry goes (a service that left the policy is dropped that way).
 */
export class PerService<T> {
  readonly #create: (service: string) => T;
  readonly #known = new Map<string, T>();
  readonly #unknown = new Map<string, T>();

  constructor(create: (service: string) => T) {
    this.#create = create;
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

  /** Entries held, for tests and stats. */
  get size(): number {
    return this.#known.size + this.#unknown.size;
  }
}
