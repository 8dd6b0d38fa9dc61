import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { parseDuration } from '../policy/duration.ts';
import { print } from './common.ts';
import { wholeNumber } from './arguments.ts';

export interface WatchOptions {
  watch?: boolean;
  count?: number;
  interval: number;
}

/** Adds --watch, --interval and --count to a command that prints a snapshot. */
export function withWatch(command: Command): Command {
  return command
    .option('-w, --watch', 'keep printing: in place on a terminal, one snapshot after another otherwise')
    .option('--interval <duration>', 'time between refreshes with --watch', durationArgument('--interval'), 2_000)
    .option('--count <n>', 'with --watch, stop after this many snapshots (default: until Ctrl-C)', wholeNumber('--count', 1));
}

function durationArgument(option: string): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < 100) throw new InvalidArgumentError(`${option}: expected a duration from 100ms, e.g. 2s; got "${value}"`);
    return ms;
  };
}

/**
 * Prints `render()` once, or with --watch again every interval until --count snapshots or SIGINT.
 * On a terminal each snapshot replaces the last; otherwise snapshots follow one another, a blank line apart.
 */
export async function printWatched(options: WatchOptions, render: () => Promise<string>): Promise<void> {
  if (!options.watch) return print(await render());
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  const inPlace = process.stdout.isTTY === true;
  try {
    for (let n = 0; n < (options.count ?? Infinity) && !stop.signal.aborted; n++) {
      if (n > 0) await sleep(options.interval, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      const text = await render();
      if (inPlace) process.stdout.write(`\x1b[H\x1b[2J${text}\n`);
      else print(n > 0 ? `\n${text}` : text);
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
