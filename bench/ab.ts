/**
 * A/B of the working tree's lib/ against another revision's, in one process: both are loaded side by
 * side (the revision's lib/ is extracted with `git archive` into .bench-out/ab/<rev>/, inside the
 * repository so that it resolves the same node_modules), and the typed JSON path over the in-memory
 * transport runs through each, with and without the telemetry layers, interleaved round by round
 * (which side goes first alternates). With --sdk the OpenTelemetry SDK is registered (as in
 * bench/telemetry.ts). With --sockets the calls go to the bench's real upstream (a child process)
 * instead, `--concurrency` at a time. Prints the medians and the paired median of the differences,
 * so that a change of a fraction of a microsecond can be told from the machine's drift.
 *
 *   node bench/ab.ts <git-revision> [--sdk] [--sockets] [--concurrency N] [--rounds N] [--calls N]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as current from '../lib/index.ts';
import { BENCH_PATH } from './harness.ts';
import { median } from './pipeline.ts';
import { startUpstream } from './server.ts';

type Lib = typeof current;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { sdk: { type: 'boolean' }, sockets: { type: 'boolean' }, concurrency: { type: 'string' }, rounds: { type: 'string' }, calls: { type: 'string' } },
});
const revision = positionals[0];
if (!revision) {
  console.error('usage: node bench/ab.ts <git-revision> [--sdk] [--sockets] [--concurrency N] [--rounds N] [--calls N]');
  process.exit(2);
}
const rounds = Number(values.rounds ?? 9);
const calls = Number(values.calls ?? 20_000);
const concurrency = values.sockets ? Number(values.concurrency ?? 32) : 1;

const root = fileURLToPath(new URL('..', import.meta.url));
const commit = execFileSync('git', ['rev-parse', '--short', revision], { cwd: root, encoding: 'utf8' }).trim();
const dir = join(root, '.bench-out', 'ab', commit);
if (!existsSync(join(dir, 'lib', 'index.ts'))) {
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git archive ${commit} lib package.json | tar -x -C "${dir}"`], { cwd: root });
}
const other = (await import(pathToFileURL(join(dir, 'lib', 'index.ts')).href)) as Lib;
const sdk = values.sdk ? (await import('./otel-sdk.ts')).registerSdk() : undefined;
const upstream = values.sockets ? await startUpstream() : undefined;

const BODY = Buffer.from(JSON.stringify({ id: 1, name: 'item', padding: 'x'.repeat(30) }));

/** The in-memory transport: a 64-byte JSON answer with no I/O. */
const memoryTransport = () => ({
  name: 'memory',
  request: async () => {
    const body = new Readable({ read() {} });
    body.push(BODY);
    body.push(null);
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  },
  close: async () => {},
});

/** Runs `call` `n` times, `concurrency` at a time. */
async function drive(call: () => Promise<unknown>, n: number): Promise<void> {
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started++ < n) await call();
  }));
}

/** CPU µs per call of the typed JSON path through `lib`'s default stack (or without its telemetry layers). */
async function cpuPerCall(lib: Lib, telemetry: boolean): Promise<number> {
  const layers = telemetry ? lib.DEFAULT_STACK : lib.DEFAULT_STACK.filter((l) => l.name !== 'telemetry' && l.name !== 'attempt-telemetry');
  const endpoint = upstream?.origin ?? 'http://127.0.0.1:1';
  const mesh = lib.createMesh({
    env: {},
    layers,
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: [endpoint] } } },
    ...(upstream ? {} : { transport: memoryTransport }),
  });
  const client = mesh.client('upstream', lib.defineService({ routes: { item: { method: 'GET', path: upstream ? BENCH_PATH : '/item', response: lib.shape<{ id: number }>() } } }));
  await drive(() => client.item(), 2_000);
  const start = process.cpuUsage();
  await drive(() => client.item(), calls);
  const used = process.cpuUsage(start);
  await mesh.close();
  return (used.user + used.system) / calls;
}

const runs = { other: { off: [] as number[], on: [] as number[] }, current: { off: [] as number[], on: [] as number[] } };
for (let round = 0; round < rounds; round++) {
  const sides = round % 2 === 0 ? (['current', 'other'] as const) : (['other', 'current'] as const);
  for (const side of sides) {
    const lib = side === 'current' ? current : other;
    runs[side].off.push(await cpuPerCall(lib, false));
    runs[side].on.push(await cpuPerCall(lib, true));
  }
}
await sdk?.shutdown();
await upstream?.close();

const pairedMedian = (a: number[], b: number[]): number => median(a.map((x, i) => x - b[i]!));
const line = (label: string, r: { off: number[]; on: number[] }): string =>
  `  ${label.padEnd(28)} without telemetry ${median(r.off).toFixed(2)} µs, with ${median(r.on).toFixed(2)} µs (telemetry +${pairedMedian(r.on, r.off).toFixed(2)} µs)`;
const where = upstream ? `loopback HTTP upstream, concurrency ${concurrency}` : 'in-memory transport';
console.log(`A/B, typed JSON path, ${where}, ${calls} calls × ${rounds} rounds, ${values.sdk ? 'OpenTelemetry SDK registered' : 'no SDK'}:`);
console.log(line(`${commit} (${revision})`, runs.other));
console.log(line('working tree', runs.current));
console.log(`  working tree − ${commit}, paired median per round: ${pairedMedian(runs.current.on, runs.other.on).toFixed(2)} µs with telemetry, ${pairedMedian(runs.current.off, runs.other.off).toFixed(2)} µs without`);
