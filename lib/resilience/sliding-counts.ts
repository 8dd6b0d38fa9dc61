const SLOTS = 10;

/**
 * Counters over a sliding window of time, e.g. calls and retries in the last 10 s: a ring of 10 time
 * slots per counter, advanced when it is read or written, so that old counts expire without a timer.
 */
export class SlidingCounts {
  readonly #slotMs: number;
  readonly #series: number;
  /** SLOTS slots per series, series after series, then one running sum per series (one allocation). */
  readonly #counts: Float64Array;
  #slot = 0;
  #slotStart: number;

  constructor(windowMs: number, series: number, now = Date.now()) {
    this.#slotMs = windowMs / SLOTS;
    this.#series = series;
    this.#counts = new Float64Array((SLOTS + 1) * series);
    this.#slotStart = now;
  }

  add(series: number, now = Date.now()): void {
    this.#advance(now);
    this.#counts[series * SLOTS + this.#slot]!++;
    this.#counts[this.#series * SLOTS + series]!++;
  }

  /** The count of `series` over the window ending now. */
  sum(series: number, now = Date.now()): number {
    this.#advance(now);
    return this.#counts[this.#series * SLOTS + series]!;
  }

  #advance(now: number): void {
    const elapsed = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (elapsed <= 0) return;
    for (let i = 0; i < Math.min(elapsed, SLOTS); i++) {
      this.#slot = (this.#slot + 1) % SLOTS;
      for (let s = 0; s < this.#series; s++) {
        const at = s * SLOTS + this.#slot;
        this.#counts[this.#series * SLOTS + s]! -= this.#counts[at]!;
        this.#counts[at] = 0;
      }
    }
    this.#slotStart += elapsed * this.#slotMs;
  }
}
