import type { SketchBins } from './tally.ts';

/**
 * A latency sketch's bins on the wire: unsigned LEB128 varints, then base64. The varints are the
 * zero count, the first bin key (zigzag, as keys of values under 1 ms are negative), then one count
 * per consecutive key. Counts of a window are small numbers, so a bin is one or two bytes, against
 * three or four characters as a JSON number; and the control plane holds the bytes as they came and
 * reads them only when it merges.
 */

/** Bin keys a report may carry: 1 %-accuracy keys of values from 1e-9 ms to 1e12 ms lie well within ±this. */
export const MAX_BIN_KEY = 5_000;
/** The client's sketches collapse to at most 1,024 bins. */
export const MAX_BINS = 1_024;
/** No count (of calls in one window of one instance) is larger. */
export const MAX_COUNT = 1e12;
/** 1e12 < 2^42 takes six 7-bit groups; a longer varint is refused. */
const MAX_VARINT_BYTES = 6;
/** A bin count is checked by its length only, so it is below 2^35 (34 billion calls in one bin of one window). */
const COUNT_VARINT_BYTES = 5;

function pushVarint(out: number[], value: number): void {
  // Arithmetic rather than bit operators: counts may pass 2^32.
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

const zigzag = (n: number): number => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (n: number): number => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

/** The wire form of a sketch's bins, without the empty bins at either end (a sketch's store keeps some). */
export function encodeBins(bins: SketchBins): string {
  const { counts } = bins;
  let first = 0;
  let end = counts.length;
  while (first < end && counts[first] === 0) first++;
  while (end > first && counts[end - 1] === 0) end--;
  const bytes: number[] = [];
  pushVarint(bytes, bins.zero);
  pushVarint(bytes, zigzag(first < end ? bins.key + first : 0));
  for (let i = first; i < end; i++) pushVarint(bytes, counts[i]!);
  return Buffer.from(bytes).toString('base64');
}

/** Reads the varints of one edge's bins in place, without copying them out. */
export class BinReader {
  #bytes: Uint8Array = new Uint8Array(0);
  #at = 0;
  #end = 0;

  /** Starts reading `bytes[start, end)`. */
  reset(bytes: Uint8Array, start: number, end: number): this {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
    return this;
  }

  get done(): boolean {
    return this.#at >= this.#end;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#end - this.#at;
  }

  /** The next varint; -1 when it is cut short, too long or larger than MAX_COUNT. */
  next(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES && this.#at < this.#end; i++) {
      const byte = this.#bytes[this.#at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value <= MAX_COUNT ? value : -1;
      scale *= 0x80;
    }
    return -1;
  }

  /** The next varint as a bin key (zigzag-decoded); NaN when it is not a varint. */
  nextKey(): number {
    const encoded = this.next();
    return encoded < 0 ? Number.NaN : unzigzag(encoded);
  }
}

/**
 * Checks the bins in `bytes[start, end)`: a zero count, a first key and at most MAX_BINS counts,
 * every key within ±MAX_BIN_KEY. Returns what is wrong, or undefined.
 */
export function checkBins(reader: BinReader, bytes: Uint8Array, start: number, end: number): string | undefined {
  reader.reset(bytes, start, end);
  if (reader.next() < 0) return 'the zero count is not a varint of at most 1e12';
  const key = reader.nextKey();
  if (!(Math.abs(key) <= MAX_BIN_KEY)) return `the first key is not a varint within ±${MAX_BIN_KEY}`;
  // The counts, byte by byte (the hot part of taking a report in): a byte under 0x80 ends a varint.
  let bins = 0;
  let length = 0;
  for (let at = end - reader.remaining; at < end; at++) {
    if (bytes[at]! < 0x80) {
      bins++;
      length = 0;
    } else if (++length === COUNT_VARINT_BYTES) return `bin ${bins}: a varint longer than ${COUNT_VARINT_BYTES} bytes`;
  }
  if (length > 0) return `bin ${bins}: a varint cut short`;
  if (bins > MAX_BINS) return `more than ${MAX_BINS} bins`;
  if (key + bins - 1 > MAX_BIN_KEY) return `the last key is past ${MAX_BIN_KEY}`;
  return undefined;
}
