import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/index.ts';
import { PerService } from '../../lib/pipeline/per-service.ts';
import { Harness, upPolicy } from '../helpers/fault-server.ts';

const ENDPOINTS = [{ origin: 'http://127.0.0.1:1', basePath: '' }];

describe('per-service state', function () {
  it('gives each service with endpoints its own entry, and every other name a place in a 64-entry LRU', function () {
    let made = 0;
    const states = new PerService((service) => ({ service, n: made++ }));
    const payments = states.get({ service: 'payments', endpoints: ENDPOINTS });
    const hot = states.get({ service: 'hot-unknown', endpoints: [] });
    for (let i = 0; i < 10_000; i++) {
      states.get({ service: `made-up-${i}`, endpoints: [] });
      if (i % 32 === 0) expect(states.get({ service: 'hot-unknown', endpoints: [] })).to.equal(hot); // recently used: kept
    }
    expect(states.size).to.equal(1 + 64);
    expect(states.get({ service: 'payments', endpoints: ENDPOINTS })).to.equal(payments);
    expect(states.get({ service: 'made-up-0', endpoints: [] }).n).to.be.above(10_000); // long evicted: made again
  });
});

// The calls below end at the endpoint layer (no endpoints), so no transport is involved.
describe('per-service state through the mesh', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('30k calls to made-up service names keep the heap and stats() bounded, and the known service working', async function () {
    this.timeout(60_000);
    const srv = await h.server([], { status: 200, body: '{"ok":true}', headers: { 'content-type': 'application/json' } });
    const mesh = h.mesh(upPolicy(srv.origin));
    const callUnknown = async (i: number): Promise<void> => {
      const err = await mesh.client(`svc-${i}`).get('/').catch((e: unknown) => e);
      expect((err as MeshError).code).to.equal(ErrorCode.Config);
    };
    const gc = globalThis.gc!;
    for (let i = 0; i < 1_000; i++) await callUnknown(i); // warm up: code, the LRUs' first fill
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 1_000; i < 30_000; i++) await callUnknown(i);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // Unbounded, this was ~1 KB per name (about 28 MiB here); bounded, it stays flat.
    expect(grown, `${(grown / 2 ** 20).toFixed(1)} MiB`).to.be.below(8 * 2 ** 20);
    expect(Object.keys(mesh.stats().services).length).to.be.at.most(1_024);
    expect(await mesh.client('up').get('/')).to.deep.equal({ ok: true });
  });
});
