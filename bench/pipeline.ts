/**
 * The pipeline alone: the cost of meshfetch's layers per call, with a transport that answers at once
 * from memory, so no network noise hides a microsecond. Bare (deadline + endpoint) vs the default
 * stack, typed JSON path, interleaved rounds, median.
 */
import { Readable } from 'node:stream';
import { createMesh, DEFAULT_STACK, defineService, shape } from '../lib/index.ts';
import type { Layer, Transport, TransportFactory } from '../lib/index.ts';
import { BARE_LAYERS } from './meshfetch.ts';

const BODY = Buffer.from(JSON.stringify({ id: 1, name: 'item', padding: 'x'.repeat(30) }));

/** Answers every request with 200 and a 64-byte JSON body, without any I/O. */
export const memoryTransport: TransportFactory = (): Transport => ({
  name: 'memory',
  request: async () => {
    const body = new Readable({ read() {} });
    body.push(BODY);
    body.push(null);
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  },
  close: async () => {},
});

const Contract = defineService({ routes: { item: { method: 'GET', path: '/item', response: shape<{ id: number }>() } } });

/** Client CPU per call (µs) of the typed JSON path through `layers`, over the in-memory transport. */
export async function cpuPerCall(layers: readonly Layer[], calls: number): Promise<number> {
  const mesh = createMesh({
    env: {},
    transport: memoryTransport,
    layers,
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: ['http://127.0.0.1:1'] } } },
  });
  const client = mesh.client('upstream', Contract);
  for (let i = 0; i < 2_000; i++) await client.item();
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await client.item();
  const used = process.cpuUsage(start);
  await mesh.close();
  return (used.user + used.system) / calls;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runPipelineBench(rounds: number, calls: number): Promise<string> {
  const bare: number[] = [];
  const full: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(await cpuPerCall(BARE_LAYERS, calls));
    full.push(await cpuPerCall(DEFAULT_STACK, calls));
  }
  const b = median(bare);
  const f = median(full);
  return [
    `pipeline only (in-memory transport, typed JSON path, ${calls} calls × ${rounds} rounds, median):`,
    `  bare (deadline + endpoint)              ${b.toFixed(2)} µs CPU/call`,
    `  default stack (+ retry, propagation,   ${f.toFixed(2)} µs CPU/call   (+${(f - b).toFixed(2)} µs, ${(f / b).toFixed(2)}x)`,
    `   telemetry layers, no SDK registered)`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runPipelineBench(7, 50_000));
}
