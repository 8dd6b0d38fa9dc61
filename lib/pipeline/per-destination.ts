import type { CompiledPolicy } from '../policy/compile.ts';
import type { LayerDeps } from './layers.ts';
import type { CallContext } from './types.ts';

/** Entries for services the policy names: bounded by the policy's size, this is a backstop (above the 10,000 destinations issue #7 measures). */
const MAX_KNOWN = 16_384;
/** Entries for any other name: absolute-URL clients, typos, names built from input. */
const MAX_UNKNOWN = 64;
/** Entries an eviction looks at, at most, to find one not in use: the cost of an add stays constant. */
const EVICTION_SCAN = 8;

/** What a layer keeps per destination can tell its map more about itself; each part is optional. */
export interface DestinationState {
  /** A call is using the state now (in flight, or waiting on it): it is not dropped while so. */
  inUse?(): boolean;
  /** Holds nothing worth keeping, unused since `lastUsed` (the clock the map is fed): the next sweep drops it. */
  idle?(now: number, lastUsed: number): boolean;
  /** Releases what the state holds (shuts a breaker down, refuses waiting calls); called when it is dropped. */
  dispose?(): void;
}

interface Slot<V> {
  readonly state: V;
  /** The service the key belongs to, for dropping what a new policy no longer gives endpoints. */
  readonly service: string;
  lastUsed: number;
}

/**
 * A layer's per-destination state, made on first use and bounded, with no timer. A service the
 * policy in force names (with endpoints, or only a traffic split) gets its own entry, kept across
 * policy revisions and dropped when a revision removes the service; every other name shares a small least-recently-used set,
 * so that calls to 100k made-up names keep about MAX_UNKNOWN entries. An entry in use is never
 * dropped: a bound that is reached passes it over (it can only be exceeded by names with calls in
 * flight), and a revision that removes its service moves it among the other names.
 * With `sweepEvery`, an access at most that often walks the entries and drops the idle ones, so an
 * idle mesh holds no timers at all. Everything is released at mesh.close().
 */
export class PerDestination<V extends object> {
  readonly #known = new Map<string, Slot<V>>();
  readonly #unknown = new Map<string, Slot<V>>();
  readonly #sweepEvery: number | undefined;
  #nextSweep = 0;

  /** Without `deps` (a unit test), entries leave only by the bounds and sweeps. */
  constructor(deps?: Pick<LayerDeps, 'onPolicy' | 'shutdown'>, sweepEvery?: number) {
    this.#sweepEvery = sweepEvery;
    if (!deps) return;
    const off = deps.onPolicy((policy) => this.#keepServicesOf(policy));
    deps.shutdown.addEventListener(
      'abort',
      () => {
        off();
        this.clear();
      },
      { once: true },
    );
  }

  /**
   * The state for `key`, marked as used at `now`; undefined when there is none (then `add` it). `now`
   * is on the clock the sweep and `idle` read: a map without a sweep needs none.
   */
  get(key: string, now = 0): V | undefined {
    if (this.#sweepEvery !== undefined && now >= this.#nextSweep) this.sweep(now);
    let slot = this.#known.get(key);
    if (slot === undefined) {
      slot = this.#unknown.get(key);
      if (slot === undefined) return undefined;
      this.#unknown.delete(key); // most recently used goes last
      this.#unknown.set(key, slot);
    }
    slot.lastUsed = now;
    return slot.state;
  }

  /** `known`: the policy in force names `service` (namedInPolicy). */
  add(key: string, service: string, known: boolean, state: V, now = 0): V {
    const entries = known ? this.#known : this.#unknown;
    entries.set(key, { state, service, lastUsed: now });
    if (entries.size > (known ? MAX_KNOWN : MAX_UNKNOWN)) evict(entries, known ? MAX_KNOWN : MAX_UNKNOWN);
    return state;
  }

  /** Entries held. */
  get size(): number {
    return this.#known.size + this.#unknown.size;
  }

  /** Drops the idle entries (those that can tell, and are not in use). */
  sweep(now: number): void {
    if (this.#sweepEvery !== undefined) this.#nextSweep = now + this.#sweepEvery;
    for (const entries of [this.#known, this.#unknown]) {
      for (const [key, slot] of entries) {
        if (!hooks(slot).idle?.(now, slot.lastUsed) || hooks(slot).inUse?.()) continue;
        entries.delete(key);
        hooks(slot).dispose?.();
      }
    }
  }

  clear(): void {
    for (const entries of [this.#known, this.#unknown]) {
      for (const slot of entries.values()) hooks(slot).dispose?.();
      entries.clear();
    }
  }

  #keepServicesOf(policy: CompiledPolicy): void {
    const named = (slot: Slot<V>): boolean => policy.services.has(slot.service);
    for (const [key, slot] of this.#known) {
      if (named(slot)) continue;
      this.#known.delete(key);
      if (hooks(slot).inUse?.()) this.#unknown.set(key, slot); // its calls, and any under the same name, keep sharing it
      else hooks(slot).dispose?.();
    }
    for (const [key, slot] of this.#unknown) {
      if (!named(slot)) continue;
      this.#unknown.delete(key);
      this.#known.set(key, slot);
    }
    evict(this.#unknown, MAX_UNKNOWN);
  }
}

/**
 * Whether the policy the call started under names its service: then its state is kept as long as a
 * policy does. Endpoints are not the test: a service may have none of its own and split its calls.
 */
export function namedInPolicy(ctx: Pick<CallContext, 'service' | 'policyInForce'>): boolean {
  return ctx.policyInForce.services.has(ctx.service);
}

/** What the state can tell the map; a plain Map (say, routes of a service) tells nothing. */
function hooks(slot: Slot<object>): DestinationState {
  return slot.state;
}

/**
 * Drops the oldest entries not in use until `max` are left, looking at EVICTION_SCAN at most; one in
 * use goes to the back, as if just used (it is). Past the scan the set stays over its bound for now:
 * the next add looks further on.
 */
function evict<V extends object>(entries: Map<string, Slot<V>>, max: number): void {
  for (let scanned = 0; entries.size > max && scanned < EVICTION_SCAN; scanned++) {
    const [key, slot] = entries.entries().next().value!;
    entries.delete(key);
    if (hooks(slot).inUse?.()) entries.set(key, slot);
    else hooks(slot).dispose?.();
  }
}
