import type { Command } from 'commander';
import type { RouteStats } from '../control-plane/report-aggregator.ts';
import { run, withApi, withCommon } from './common.ts';
import type { Common } from './common.ts';
import type { CommandModule } from './program.ts';
import { fittedTable, millis, perSecond, percent } from './readable.ts';
import { printWatched, withWatch } from './watch-loop.ts';
import type { WatchOptions } from './watch-loop.ts';

export function routesTable(service: string, routes: readonly RouteStats[]): string {
  if (routes.length === 0) return `no routes: no client has reported calls to ${service} within the window`;
  const rows = routes.map((r) => [
    r.route, percent(r.successRate), percent(r.attemptSuccessRate), perSecond(r.rate),
    millis(r.latency?.p50), millis(r.latency?.p95), millis(r.latency?.p99),
  ]);
  return fittedTable([['ROUTE', 'EFFECTIVE_SUCCESS', 'ACTUAL_SUCCESS', 'RPS', 'P50', 'P95', 'P99'], ...rows], [0]);
}

/** `meshfetch routes <service>`: per route of a destination, success after retries beside success per attempt. */
export const routesCommand: CommandModule = (program: Command) => {
  withWatch(withCommon(program.command('routes <service>').description('per route of a service: success after retries (effective) beside per attempt (actual), rate, latency')))
    .option('--window <duration>', 'count instances that reported within this (default: the control plane\'s report ttl)')
    .option('--from <service>', 'only calls from this caller')
    .action(
      run((service: string, options: Common & WatchOptions & { window?: string; from?: string }) =>
        withApi(options, (api) =>
          printWatched(options, async () => {
            const view = await api.stats({ window: options.window, from: options.from, to: service });
            return options.output === 'json' ? JSON.stringify(view.serviceRoutes, null, 2) : routesTable(service, view.serviceRoutes);
          }),
        ),
      ),
    );
};
