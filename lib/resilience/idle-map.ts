/** What an IdleMap holds: it knows when it was last used and how to let go of what it holds. */
export interface IdleEntry {
  lastUsed: number;
  /** Whether the entry may be dropped now, having been unused since `lastUsed`. */
  idle(now: number): boolean;
  /** Releases what the entry holds (e.g. shuts a breaker down); called when it is dropped. */
  dispose(): void;
}

/** Entries for destinations without endpoints in policy (absolute URLs, names built from input). */
const MAX_UNKNOWN = 64;

/**
 * Per-destination state, created on first use and dropped once idle. There is no timer: every
 * `sweepEvery` ms at most, an access walks the map and drops idle entries, so the cost is one
 * comparison per access plus an occasional walk, and an idle mesh holds no timers at all. As with
 * PerService, a destination without endpoints in policy is kept in a small least-recently-used set,
 * so that calls to 100k made-up names cannot grow it.
 */
export class IdleMap<K, V extends IdleEntry> {
  readonly #entries = new Map<K, V>();
  readonly #unknown = new Map<K, V>();
  readonly #sweepEvery: number;
  #nextSweep: number;

  /** Everything held is dropped when `shutdown` aborts (mesh.close()). */
  constructor(sweepEvery: number, shutdown: AbortSignal, now = Date.now()) {
    this.#sweepEvery = sweepEvery;
    this.#nextSweep = now + sweepEvery;
    shutdown.addEventListener('abort', () => this.clear(), { once: true });
  }

  get size(): number {
    return this.#entries.size + this.#unknown.size;
  }

  /** The entry for `key`, marked as used now; undefined when there is none (then `add` one). */
  get(key: K, now = Date.now()): V | undefined {
    if (now >= this.#nextSweep) this.sweep(now);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = this.#unknown.get(key);
      if (entry) {
        this.#unknown.delete(key); // most recently used goes last
        this.#unknown.set(key, entry);
      }
    }
    if (entry) entry.lastUsed = now;
    return entry;
  }

  /** `known`: the destination has endpoints in the policy in force (ctx.endpoints is not empty). */
  add(key: K, entry: V, known: boolean, now = Date.now()): V {
    entry.lastUsed = now;
    if (known) this.#entries.set(key, entry);
    else {
      if (this.#unknown.size >= MAX_UNKNOWN) {
        const [oldestKey, oldest] = this.#unknown.entries().next().value!;
        this.#unknown.delete(oldestKey);
        oldest.dispose();
      }
      this.#unknown.set(key, entry);
    }
    return entry;
  }

  sweep(now = Date.now()): void {
    this.#nextSweep = now + this.#sweepEvery;
    for (const entries of [this.#entries, this.#unknown]) {
      for (const [key, entry] of entries) {
        if (entry.idle(now)) {
          entries.delete(key);
          entry.dispose();
        }
      }
    }
  }

  clear(): void {
    for (const entries of [this.#entries, this.#unknown]) {
      for (const entry of entries.values()) entry.dispose();
      entries.clear();
    }
  }
}
