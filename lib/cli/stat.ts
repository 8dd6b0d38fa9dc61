import type { Command } from 'commander';
import type { EdgeStats } from '../control-plane/report-aggregator.ts';
import { run, withApi, withCommon } from './common.ts';
import type { Common } from './common.ts';
import type { CommandModule } from './program.ts';
import { fittedTable, millis, perSecond, percent } from './readable.ts';
import { printWatched, withWatch } from './watch-loop.ts';
import type { WatchOptions } from './watch-loop.ts';

type StatOptions = Common & WatchOptions & { window?: string; from?: string; to?: string };

export function statTable(edges: readonly EdgeStats[]): string {
  if (edges.length === 0) return 'no edges: no client has reported calls within the window';
  const rows = edges.map((e) => [
    e.from, e.to, percent(e.successRate), perSecond(e.rate),
    millis(e.latency?.p50), millis(e.latency?.p95), millis(e.latency?.p99),
    String(e.retries), e.breaker, String(e.instances),
  ]);
  return fittedTable([['FROM', 'TO', 'SUCCESS', 'RPS', 'P50', 'P95', 'P99', 'RETRIES', 'BREAKER', 'INSTANCES'], ...rows], [0, 1]);
}

/** `meshfetch stat`: one row per edge of the mesh, merged from every client's reports. */
export const statCommand: CommandModule = (program: Command) => {
  withWatch(withCommon(program.command('stat').description('golden metrics per edge (caller → destination), merged over every reporting client')))
    .option('--window <duration>', 'count instances that reported within this (default: the control plane\'s report ttl)')
    .option('--from <service>', 'only edges from this caller')
    .option('--to <service>', 'only edges to this destination')
    .action(
      run((options: StatOptions) =>
        withApi(options, (api) =>
          printWatched(options, async () => {
            const view = await api.stats({ window: options.window, from: options.from, to: options.to });
            return options.output === 'json' ? JSON.stringify(view.edges, null, 2) : statTable(view.edges);
          }),
        ),
      ),
    );
};
