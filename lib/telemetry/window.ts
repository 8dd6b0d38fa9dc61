import { addTally, newTally } from './tally.ts';
import type { Tally } from './tally.ts';

/** How many slots a window is cut into: a figure ages out within a sixth of the window. */
const SLOTS = 6;

interface Slot {
  /** Which stretch of time (now / slotMs, floored) the slot's tally is for. */
  epoch: number;
  tally: Tally;
}

/**
 * A sliding window of tallies in a ring of slots, turned by the clock read on use: no timer, memory
 * fixed at SLOTS tallies. A slot is reset when its stretch of time comes round again.
 */
export class SlidingWindow {
  readonly #slotMs: number;
  readonly #slots: Slot[] = [];
  readonly #windowMs: number;
  readonly #created: number;
  #lastEpoch = -Infinity;

  constructor(windowMs: number, now: number) {
    this.#windowMs = windowMs;
    this.#slotMs = windowMs / SLOTS;
    this.#created = now;
  }

  /** The time the window's figures cover: the whole window, or since it was created when that is more recent (at least 1 s). */
  coveredMs(now: number): number {
    return Math.min(this.#windowMs, Math.max(1_000, now - this.#created));
  }

  /** The tally to count into now. */
  current(now: number): Tally {
    const epoch = Math.floor(now / this.#slotMs);
    const index = epoch % SLOTS;
    let slot = this.#slots[index];
    if (!slot) this.#slots[index] = slot = { epoch, tally: newTally() };
    else if (slot.epoch !== epoch) {
      slot.epoch = epoch;
      slot.tally = newTally();
    }
    this.#lastEpoch = epoch;
    return slot.tally;
  }

  /** Everything counted within the window that ends now. */
  sum(now: number): Tally {
    const epoch = Math.floor(now / this.#slotMs);
    const total = newTally();
    for (const slot of this.#slots) if (slot && slot.epoch > epoch - SLOTS && slot.epoch <= epoch) addTally(total, slot.tally);
    return total;
  }

  /** True when nothing was counted within the window that ends now. */
  idle(now: number): boolean {
    return this.#lastEpoch <= Math.floor(now / this.#slotMs) - SLOTS;
  }
}
