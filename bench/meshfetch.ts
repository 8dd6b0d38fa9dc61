/**
 * meshfetch candidates for bench/run.ts: the typed JSON path and the fetch path, on each transport,
 * with the default stack and with only the foundation's bare layers (deadline + endpoint). Each
 * builds its own mesh in setup() and closes it in close().
 */
import { createMesh, DEFAULT_STACK, defineService, shape, undiciTransport } from '../lib/index.ts';
import type { Layer, MeshOptions, TransportFactory } from '../lib/index.ts';
import { gotTransport } from '../lib/got.ts';
import { BENCH_PATH } from './harness.ts';
import type { Candidate, CandidateInstance } from './harness.ts';

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
