/** Numbers rounded the way people read them, for the CLI's tables. */

/** 99.94 % reads 99.9 %, never 100.0 %: a rate is floored to a tenth of a percent, so only all-good shows 100. */
export function percent(rate: number | null): string {
  return rate === null ? '-' : `${(Math.floor(rate * 1_000) / 10).toFixed(1)}%`;
}

export function perSecond(rate: number): string {
  if (rate >= 10_000) return `${Math.round(rate / 1_000)}k`;
  if (rate >= 1_000) return `${(rate / 1_000).toFixed(1)}k`;
  if (rate >= 100) return String(Math.round(rate));
  return rate >= 10 ? rate.toFixed(1) : rate.toFixed(2);
}

export function millis(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms >= 10_000) return `${Math.round(ms / 1_000)}s`;
  if (ms >= 1_000) return `${(ms / 1_000).toFixed(1)}s`;
  return ms >= 10 ? `${Math.round(ms)}ms` : `${ms.toFixed(1)}ms`;
}

/**
 * Rows of cells in aligned columns that fit `maxWidth`: the gaps narrow from two spaces to one, and
 * then columns in `shrinkable` (names) are cut with "…", widest first, down to `minWidth`.
 */
export function fittedTable(rows: string[][], shrinkable: readonly number[], maxWidth = 80, minWidth = 6): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const total = (gap: number): number => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
  const gap = total(2) <= maxWidth ? 2 : 1;
  while (total(gap) > maxWidth && shrinkable.length > 0) {
    const widest = shrinkable.reduce((a, b) => (widths[b]! > widths[a]! ? b : a), shrinkable[0]!);
    if (widths[widest]! <= minWidth) break;
    widths[widest]!--;
  }
  const fit = (cell: string, width: number): string => (cell.length > width ? `${cell.slice(0, width - 1)}…` : cell.padEnd(width));
  return rows.map((row) => row.map((cell, i) => fit(cell, widths[i]!)).join(' '.repeat(gap)).trimEnd()).join('\n');
}
