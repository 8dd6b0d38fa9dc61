import { describe } from '../telemetry/figures.ts';
import type { GoldenFigures } from '../telemetry/figures.ts';
import { BinReader, MAX_BIN_KEY } from '../telemetry/report-bins.ts';
import { EDGE_COUNTS } from '../telemetry/report.ts';
import { addBins, newSketch, newTally } from '../telemetry/tally.ts';
import { BREAKER, BREAKER_STATES, COLUMNS, FIRST_COUNT, LATENCY_END, LATENCY_START, WINDOW_MS } from './held-report.ts';
import type { HeldReport } from './held-report.ts';

const reader = new BinReader();
/** Keys of room added on each side when the bins grow. */
const GROWTH = 32;

/**
 * The figures of one destination (an edge, or a route of it) merged over many reports: counts add,
 * rates add, the breaker is the worst, and latency bins add into one flat array by key (a plain
 * addition each), put into a sketch once when the figures are read. Adding bins key by key gives the
 * sketch DDSketch's own merge would: the same bins, the same counts.
 */
export class EdgeMerger {
  readonly #counts = new Float64Array(EDGE_COUNTS.length);
  /** Bin counts by key - #offset, over keys #minKey…#maxKey; allocated with the first latency, grown to fit. */
  #bins: Float64Array | undefined;
  #offset = 0;
  #minKey = MAX_BIN_KEY + 1;
  #maxKey = -MAX_BIN_KEY - 1;
  #zero = 0;
  #rate = 0;
  #windowMs = 0;
  #breaker = 0;
  #instances = 0;
  #lastReport: HeldReport | undefined;

  /** Reports merged in (each counted once however many of its edges are). */
  get instances(): number {
    return this.#instances;
  }

  /** Counts `report` as one of the instances behind these figures. Reports are counted one after another, so a repeat is the last one. */
  countInstance(report: HeldReport): void {
    if (this.#lastReport === report) return;
    this.#lastReport = report;
    this.#instances++;
  }

  /** Adds edge `edge` of `report`. */
  addEdge(report: HeldReport, edge: number): void {
    const figures = report.figures;
    const row = edge * COLUMNS;
    for (let c = 0; c < this.#counts.length; c++) this.#counts[c]! += figures[row + FIRST_COUNT + c]!;
    const windowMs = figures[row + WINDOW_MS]!;
    this.#rate += figures[row + FIRST_COUNT]! / (windowMs / 1_000);
    this.#windowMs = Math.max(this.#windowMs, windowMs);
    this.#breaker = Math.max(this.#breaker, figures[row + BREAKER]!);
    const start = figures[row + LATENCY_START]!;
    const end = figures[row + LATENCY_END]!;
    if (start === end) return;
    // Checked when the report came in: every varint is well formed and every key within range.
    reader.reset(report.latency, start, end);
    this.#zero += reader.next();
    const first = reader.nextKey();
    const bins = this.#fit(first, first + reader.remaining - 1);
    let at = first - this.#offset;
    let last = at - 1;
    while (!reader.done) {
      const count = reader.next();
      if (count > 0) last = at;
      bins[at++]! += count;
    }
    if (last < first - this.#offset) return;
    this.#minKey = Math.min(this.#minKey, first);
    this.#maxKey = Math.max(this.#maxKey, last + this.#offset);
  }

  /**
   * The bins array, grown if need be to hold keys from..to (`to` may be past the last key: a count
   * takes at least one byte, so the bytes left bound the keys).
   */
  #fit(from: number, to: number): Float64Array {
    to = Math.min(to, MAX_BIN_KEY);
    const bins = this.#bins;
    if (bins && from >= this.#offset && to < this.#offset + bins.length) return bins;
    // Grown with room on both sides, as the next report's keys are likely to be a little off.
    const low = bins ? Math.max(-MAX_BIN_KEY, Math.min(from, this.#offset) - GROWTH) : from;
    const high = bins ? Math.min(MAX_BIN_KEY, Math.max(to, this.#offset + bins.length - 1) + GROWTH) : to;
    const grown = new Float64Array(high - low + 1);
    if (bins) grown.set(bins, this.#offset - low);
    this.#offset = low;
    return (this.#bins = grown);
  }

  /** Adds everything merged into `other` (but not its instances: they may be the same ones). */
  addMerger(other: EdgeMerger): void {
    for (let c = 0; c < this.#counts.length; c++) this.#counts[c]! += other.#counts[c]!;
    this.#rate += other.#rate;
    this.#windowMs = Math.max(this.#windowMs, other.#windowMs);
    this.#breaker = Math.max(this.#breaker, other.#breaker);
    if (!other.#bins) return;
    this.#zero += other.#zero;
    if (other.#minKey > other.#maxKey) {
      this.#bins ??= new Float64Array(0);
      return;
    }
    const bins = this.#fit(other.#minKey, other.#maxKey);
    for (let key = other.#minKey; key <= other.#maxKey; key++) bins[key - this.#offset]! += other.#bins[key - other.#offset]!;
    this.#minKey = Math.min(this.#minKey, other.#minKey);
    this.#maxKey = Math.max(this.#maxKey, other.#maxKey);
  }

  figures(): GoldenFigures {
    const tally = newTally();
    EDGE_COUNTS.forEach((name, c) => (tally[name] = this.#counts[c]!));
    if (this.#bins) {
      const counts = this.#minKey > this.#maxKey ? [] : Array.from(this.#bins.subarray(this.#minKey - this.#offset, this.#maxKey - this.#offset + 1));
      addBins((tally.latency = newSketch()), { zero: this.#zero, key: this.#minKey, counts });
    }
    const merged = describe(tally, this.#windowMs || 1_000, BREAKER_STATES[this.#breaker]!);
    merged.rate = this.#rate;
    return merged;
  }
}
