/** What an IdleMap holds: it knows when it was last used and how to let go of what it holds. */
export interface IdleEntry {
  lastUsed: number;
  /** Whether the entry may be dropped now, having been unused since `lastUsed`. */
  idle(now: number): boolean;
  /** Releases what the entry holds (e.g. shuts a breaker down); called when it is dropped. */
  dispose(): void;
}

/**
 * Per-destination state, created on first use and dropped once idle. There is no timer: every
 * `sweepEvery` ms at most, an access walks the map and drops idle entries, so the cost is one
 * comparison per access plus an occasional walk, and an idle mesh holds no timers at all.
 */
export class IdleMap<K, V extends IdleEntry> {
  readonly #entries = new Map<K, V>();
  readonly #sweepEvery: number;
  #nextSweep: number;

  /** Everything held is dropped when `shutdown` aborts (mesh.close()). */
  constructor(sweepEvery: number, shutdown: AbortSignal, now = Date.now()) {
    this.#sweepEvery = sweepEvery;
    this.#nextSweep = now + sweepEvery;
    shutdown.addEventListener('abort', () => this.clear(), { once: true });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for `key`, marked as used now; undefined when there is none (then `add` one). */
  get(key: K, now = Date.now()): V | undefined {
    if (now >= this.#nextSweep) this.sweep(now);
    const entry = this.#entries.get(key);
    if (entry) entry.lastUsed = now;
    return entry;
  }

  add(key: K, entry: V, now = Date.now()): V {
    entry.lastUsed = now;
    this.#entries.set(key, entry);
    return entry;
  }

  sweep(now = Date.now()): void {
    this.#nextSweep = now + this.#sweepEvery;
    for (const [key, entry] of this.#entries) {
      if (entry.idle(now)) {
        this.#entries.delete(key);
        entry.dispose();
      }
    }
  }

  clear(): void {
    for (const entry of this.#entries.values()) entry.dispose();
    this.#entries.clear();
  }

  values(): IterableIterator<V> {
    return this.#entries.values();
  }
}
