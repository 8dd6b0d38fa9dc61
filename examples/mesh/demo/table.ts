// The live table: one row per edge (caller → service) from each service's mesh.stats().
import type { MeshStatsSnapshot } from 'meshfetch';

const percent = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(1)}%`);
const ms = (value: number | undefined): string => (value === undefined ? '-' : `${Math.round(value)}ms`);

const COLUMNS = ['edge', 'rps', 'ok/attempt', 'ok/call', 'p50', 'p99', 'retries', 'no budget', 'breaker'] as const;

export function edgeRows(snapshots: readonly MeshStatsSnapshot[]): string[][] {
  const rows: string[][] = [];
  for (const snapshot of snapshots) {
    for (const [service, s] of Object.entries(snapshot.services)) {
      rows.push([
        `${snapshot.caller} → ${service}`,
        s.rate.toFixed(1),
        percent(s.attemptSuccessRate),
        percent(s.successRate),
        ms(s.latency?.p50),
        ms(s.latency?.p99),
        String(s.retries),
        String(s.budgetExhausted),
        s.breaker,
      ]);
    }
  }
  return rows;
}

export function renderTable(rows: readonly string[][]): string {
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}
