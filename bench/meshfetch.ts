/**
 * meshfetch candidates for bench/run.ts: the typed JSON path and the fetch path, on each transport,
 * with the default stack and with only the foundation's bare layers (deadline + endpoint). Each
 * builds its own mesh in setup() and closes it in close().
 */
import { createMesh, DEFAULT_STACK, defineService, shape, undiciTransport } from '../lib/index.ts';
import type { Layer, MeshOptions, TransportFactory } from '../lib/index.ts';
import { gotTransport } from '../lib/got.ts';
import { BENCH_PATH } from './harness.ts';
import { BASELINE_NAME } from './harness.ts';
import type { Candidate, CandidateInstance, LevelResult } from './harness.ts';

/** The pipeline with only the layers every call needs: the deadline and the endpoint pick. */
export const BARE_LAYERS: readonly Layer[] = DEFAULT_STACK.filter((layer) => layer.name === 'deadline' || layer.name === 'endpoint');

const Upstream = defineService({
  routes: { item: { method: 'GET', path: BENCH_PATH, response: shape<{ id: number }>() } },
});

function meshFor(origin: string, transport: TransportFactory, layers?: readonly Layer[]): ReturnType<typeof createMesh> {
  const options: MeshOptions = {
    env: {},
    service: 'bench',
    transport,
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: [origin] } } },
  };
  return createMesh(layers ? { ...options, layers } : options);
}

function typed(name: string, transport: () => TransportFactory, layers?: readonly Layer[]): Candidate {
  return {
    name,
    async setup(origin): Promise<CandidateInstance> {
      const mesh = meshFor(origin, transport(), layers);
      const client = mesh.client('upstream', Upstream);
      return {
        call: async () => {
          await client.item();
        },
        close: () => mesh.close(),
      };
    },
  };
}

function fetchPath(name: string, transport: () => TransportFactory, layers?: readonly Layer[]): Candidate {
  return {
    name,
    async setup(origin): Promise<CandidateInstance> {
      const mesh = meshFor(origin, transport(), layers);
      const client = mesh.client('upstream');
      return {
        call: async () => {
          const res = await client.fetch(BENCH_PATH);
          if (!res.ok) throw new Error(`status ${res.status}`);
          await res.json();
        },
        close: () => mesh.close(),
      };
    },
  };
}

const undici = (): TransportFactory => undiciTransport();
const got = (): TransportFactory => gotTransport();

export const meshfetchCandidates: Candidate[] = [
  typed('mesh bare typed', undici, BARE_LAYERS),
  typed('mesh typed', undici),
  fetchPath('mesh bare fetch', undici, BARE_LAYERS),
  fetchPath('mesh fetch', undici),
  typed('mesh typed (got)', got),
  fetchPath('mesh fetch (got)', got),
];

/** The issues' acceptance figures, read off one level's medians. */
export function summarizeCriteria(level: LevelResult): string {
  const cpu = (name: string): number | undefined => level.results.find((r) => r.name === name)?.median.cpuUsPerReq;
  const line = (label: string, a: string, b: string, limit: string): string | undefined => {
    const x = cpu(a);
    const y = cpu(b);
    if (x === undefined || y === undefined) return undefined;
    return `  ${label.padEnd(66)} ${(x - y >= 0 ? '+' : '') + (x - y).toFixed(1)} µs/req (${(x / y).toFixed(2)}x)  ${limit}`;
  };
  return [
    `criteria at concurrency ${level.concurrency} (client CPU, medians of ${level.rounds} rounds):`,
    line('bare typed JSON path − undici request', 'mesh bare typed', BASELINE_NAME, 'limit +15 µs'),
    line('bare fetch path − global fetch', 'mesh bare fetch', 'global fetch', 'must be < 0'),
    line('default-stack layers, no OTel SDK (typed): full − bare', 'mesh typed', 'mesh bare typed', 'limit +5 µs (#3) + 5 µs (#7)'),
    line('default-stack layers, no OTel SDK (fetch): full − bare', 'mesh fetch', 'mesh bare fetch', 'limit +5 µs (#3) + 5 µs (#7)'),
  ]
    .filter((l) => l !== undefined)
    .join('\n');
}
