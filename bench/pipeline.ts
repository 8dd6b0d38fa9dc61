/**
 * The pipeline alone: the cost of meshfetch's layers per call, with a transport that answers at once
 * from memory, so no network noise hides a microsecond. Interleaved rounds, median:
 *   - bare (deadline + endpoint) vs the default stack, typed JSON path;
 *   - the breaker, limits and balancer (issue #7): the default stack without the rate-limit,
 *     concurrency and circuit-breaker layers and one endpoint, vs the whole default stack with three
 *     endpoints (P2C peak-EWMA) and a rate limit switched on.
 */
import { Readable } from 'node:stream';
import { createMesh, DEFAULT_STACK, defineService, shape } from '../lib/index.ts';
import type { Layer, ServiceDocument, Transport, TransportFactory } from '../lib/index.ts';
import { BARE_LAYERS } from './meshfetch.ts';

const BODY = Buffer.from(JSON.stringify({ id: 1, name: 'item', padding: 'x'.repeat(30) }));

/** Answers every request with `status` and a 64-byte JSON body, without any I/O; counts the requests. */
export function memoryTransport(status = 200, seen = { requests: 0 }): TransportFactory {
  return (): Transport => ({
    name: 'memory',
    request: async () => {
      seen.requests++;
      const body = new Readable({ read() {} });
      body.push(BODY);
      body.push(null);
      return { status, headers: { 'content-type': 'application/json' }, body };
    },
    close: async () => {},
  });
}

const Contract = defineService({ routes: { item: { method: 'GET', path: '/item', response: shape<{ id: number }>() } } });

const ONE_ENDPOINT: ServiceDocument = { endpoints: ['http://127.0.0.1:1'] };

/** Client CPU per call (µs) of the typed JSON path through `layers`, over the in-memory transport. */
export async function cpuPerCall(layers: readonly Layer[], calls: number, service: ServiceDocument = ONE_ENDPOINT): Promise<number> {
  const mesh = createMesh({
    env: {},
    transport: memoryTransport(),
    layers,
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: service } },
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

const RESILIENCE_LAYERS = new Set(['rate-limit', 'concurrency', 'circuit-breaker']);
const WITHOUT_RESILIENCE = DEFAULT_STACK.filter((layer) => !RESILIENCE_LAYERS.has(layer.name));
const WITH_RESILIENCE: ServiceDocument = {
  endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'],
  rateLimit: { rps: 1e9, burst: 1e9 },
};

interface Pair {
  readonly label: string;
  readonly run: () => Promise<number>;
}

async function paired(rounds: number, a: Pair, b: Pair): Promise<[number, number]> {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so that neither always runs on a warmer heap.
    if (round % 2 === 0) {
      xs.push(await a.run());
      ys.push(await b.run());
    } else {
      ys.push(await b.run());
      xs.push(await a.run());
    }
  }
  return [median(xs), median(ys)];
}

export async function runPipelineBench(rounds: number, calls: number): Promise<string> {
  const [b, f] = await paired(
    rounds,
    { label: 'bare', run: () => cpuPerCall(BARE_LAYERS, calls) },
    { label: 'default', run: () => cpuPerCall(DEFAULT_STACK, calls) },
  );
  const [w, r] = await paired(
    rounds,
    { label: 'without', run: () => cpuPerCall(WITHOUT_RESILIENCE, calls) },
    { label: 'with', run: () => cpuPerCall(DEFAULT_STACK, calls, WITH_RESILIENCE) },
  );
  const delta = r - w;
  return [
    `pipeline only (in-memory transport, typed JSON path, ${calls} calls × ${rounds} rounds, median):`,
    `  bare (deadline + endpoint)                         ${b.toFixed(2)} µs CPU/call`,
    `  default stack (one endpoint, rate limit off,      ${f.toFixed(2)} µs CPU/call   (+${(f - b).toFixed(2)} µs, ${(f / b).toFixed(2)}x)`,
    `   telemetry layers, no SDK registered)`,
    `  without breaker/limits, one endpoint               ${w.toFixed(2)} µs CPU/call`,
    `  breaker + bulkhead + rate limit + P2C over 3       ${r.toFixed(2)} µs CPU/call   (+${delta.toFixed(2)} µs, ${(r / w).toFixed(2)}x)`,
    `  → success-path cost of breaker, balancer and limits: ${delta.toFixed(2)} µs per call (target ≤ 5 µs: ${delta <= 5 ? 'met' : 'NOT met'})`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runPipelineBench(7, 50_000));
}
