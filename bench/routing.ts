/**
 * The cost of routing from policy (issue #11): a service with 50 routes that match by path and
 * headers plus a 90/10 traffic split, against the same default pipeline with one route and no split.
 * Same process, in-memory transport (no network noise), interleaved rounds, median. The call carries
 * a header that only the 50th route (in precedence order) matches, so every call walks all blocks.
 *
 *   node bench/routing.ts
 */
import { createMesh, DEFAULT_STACK } from '../lib/index.ts';
import type { RouteDocument, ServiceDocument } from '../lib/index.ts';
import { median, memoryTransport } from './pipeline.ts';

const ENDPOINT = 'http://127.0.0.1:1';

const ONE_ROUTE: ServiceDocument = {
  endpoints: [ENDPOINT],
  routes: [{ name: 'items', match: { method: 'GET', path: '/items/:id' } }],
};

const ROUTES: RouteDocument[] = Array.from({ length: 50 }, (_, i) => ({
  name: `tenant-${i}`,
  match: { method: 'GET', path: '/items/:id', headers: { 'x-tenant': `t${i}`, 'x-region': { regex: '^eu-' } } },
}));
const FIFTY_ROUTES_AND_SPLIT: ServiceDocument = {
  endpoints: [ENDPOINT],
  split: [{ service: 'upstream', weight: 90 }, { service: 'canary', weight: 10 }],
  routes: ROUTES,
};

/** Client CPU per call (µs) of `client.get()` with two headers, through the default stack. */
async function cpuPerCall(service: ServiceDocument, calls: number): Promise<number> {
  const mesh = createMesh({
    env: {},
    transport: memoryTransport(),
    layers: DEFAULT_STACK,
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: service, canary: { endpoints: ['http://127.0.0.1:2'] } } },
  });
  const client = mesh.client('upstream');
  const options = { headers: { 'x-tenant': 't49', 'x-region': 'eu-west-1' } };
  for (let i = 0; i < 2_000; i++) await client.get('/items/42', options);
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await client.get('/items/42', options);
  const used = process.cpuUsage(start);
  await mesh.close();
  return (used.user + used.system) / calls;
}

export async function runRoutingBench(rounds: number, calls: number): Promise<string> {
  const one: number[] = [];
  const fifty: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so that neither always runs on a warmer heap.
    if (round % 2 === 0) {
      one.push(await cpuPerCall(ONE_ROUTE, calls));
      fifty.push(await cpuPerCall(FIFTY_ROUTES_AND_SPLIT, calls));
    } else {
      fifty.push(await cpuPerCall(FIFTY_ROUTES_AND_SPLIT, calls));
      one.push(await cpuPerCall(ONE_ROUTE, calls));
    }
  }
  const [a, b] = [median(one), median(fifty)];
  const delta = b - a;
  return [
    `routing (in-memory transport, client.get with 2 headers, ${calls} calls × ${rounds} rounds, median):`,
    `  one route, no split                                ${a.toFixed(2)} µs CPU/call`,
    `  50 routes matching by headers + a 90/10 split      ${b.toFixed(2)} µs CPU/call   (+${delta.toFixed(2)} µs, ${(b / a).toFixed(2)}x)`,
    `  → cost of matching 50 routes and splitting: ${delta.toFixed(2)} µs per call (target ≤ 3 µs: ${delta <= 3 ? 'met' : 'NOT met'})`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runRoutingBench(7, 50_000));
}
