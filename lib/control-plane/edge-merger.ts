import { describe } from '../telemetry/figures.ts';
import type { GoldenFigures } from '../telemetry/figures.ts';
import { BinReader, MAX_BINS, MAX_BIN_KEY } from '../telemetry/report-bins.ts';
import { EDGE_COUNTS } from '../telemetry/report.ts';
import { addBins, newSketch, newTally } from '../telemetry/tally.ts';
import { BREAKER, BREAKER_STATES, COLUMNS, FIRST_COUNT, LATENCY_END, LATENCY_START, WINDOW_MS } from './held-report.ts';
import type { HeldReport } from './held-report.ts';

const reader = new BinReader();
/** Keys of room added on each side when the bins grow. */
const GROWTH = 32;
/** Keys a merged sketch keeps (its bin limit, as the clients' sketches): the lowest past it collapse into one. */
const SPAN = MAX_BINS;

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
    // Read twice: first for the keys that hold counts, as the bins must fit those and no more.
    reader.reset(report.latency, start, end);
    this.#zero += reader.next();
    const first = reader.nextKey();
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    for (let key = first; !reader.done; key++) {
      if (reader.next() === 0) continue;
      low = Math.min(low, key);
      high = key;
    }
    this.#bins ??= new Float64Array(0);
    if (high < low) return;
    const bins = this.#fit(low, high);
    reader.reset(report.latency, start, end).next();
    reader.next();
    for (let key = first; key <= high; key++) {
      const count = reader.next();
      if (count > 0) bins[Math.max(key - this.#offset, 0)]! += count;
    }
    this.#minKey = Math.max(this.#offset, Math.min(this.#minKey, low));
    this.#maxKey = Math.max(this.#maxKey, high);
  }

  /**
   * The bins array, grown if need be to hold keys from..to. It never spans more than SPAN keys below
   * the highest: the merged sketch keeps no more (it collapses the lowest),
   * and a few reports with keys far apart must not cost a 10,000-key array per route.
   * Counts below the lowest key kept are added to it.
   */
  #fit(from: number, to: number): Float64Array {
    const bins = this.#bins;
    const empty = !bins || this.#minKey > this.#maxKey;
    const top = empty ? to : Math.max(to, this.#maxKey);
    // Keys below the lowest kept need no room: they add to it.
    if (bins && to < this.#offset + bins.length && (from >= this.#offset || this.#offset <= top - SPAN + 1)) return bins;
    // Grown with room on both sides, as the next report's keys are likely to be a little off.
    const low = Math.max(top - SPAN + 1, empty ? from : Math.min(from, this.#offset) - GROWTH);
    const high = Math.min(low + SPAN - 1 + GROWTH, empty ? to : Math.max(to, this.#offset + bins!.length - 1) + GROWTH);
    const grown = new Float64Array(high - low + 1);
    if (!empty) {
      for (let key = this.#minKey; key <= this.#maxKey; key++) grown[Math.max(key - low, 0)]! += bins![key - this.#offset]!;
      this.#minKey = Math.max(this.#minKey, low);
    }
    this.#offset = low;
    return (this.#bins = grown);
  }

  /** Keys the bins array spans (at most SPAN and some room). */
  get span(): number {
    return this.#bins?.length ?? 0;
  }

  /** Adds everything merged into `other` (but not its instances: they may be the same ones). */
  addMerger(other: EdgeMerger): void {
    for (let c = 0; c < this.#counts.length; c++) this.#counts[c]! += other.#counts[c]!;
    this.#rate += other.#rate;
    this.#windowMs = Math.max(this.#windowMs, other.#windowMs);
    this.#breaker = Math.max(this.#breaker, other.#breaker);
    if (!other.#bins) return;
    this.#zero += other.#zero;
    this.#bins ??= new Float64Array(0);
    if (other.#minKey > other.#maxKey) return;
    const bins = this.#fit(other.#minKey, other.#maxKey);
    for (let key = other.#minKey; key <= other.#maxKey; key++) bins[Math.max(key - this.#offset, 0)]! += other.#bins[key - other.#offset]!;
    this.#minKey = Math.max(this.#offset, Math.min(this.#minKey, other.#minKey));
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
