import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/index.ts';
import type { PolicyDocument } from '../../lib/index.ts';
import { PerService } from '../../lib/pipeline/per-service.ts';
import { compilePolicy } from '../../lib/policy/compile.ts';
import type { CompiledPolicy } from '../../lib/policy/compile.ts';
import { Harness, upPolicy } from '../helpers/fault-server.ts';

const ENDPOINTS = [{ origin: 'http://127.0.0.1:1', basePath: '', url: 'http://127.0.0.1:1' }];

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

  it('drops services a new policy gives no endpoints, and everything at shutdown (unsubscribing)', function () {
    const listeners = new Set<(policy: CompiledPolicy) => void>();
    const shutdown = new AbortController();
    const onPolicy = (listener: (policy: CompiledPolicy) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
    const states = new PerService((service) => ({ service }), { onPolicy, shutdown: shutdown.signal });
    const a = states.get({ service: 'a', endpoints: ENDPOINTS });
    states.get({ service: 'b', endpoints: ENDPOINTS });
    states.get({ service: 'stray', endpoints: [] });
    const install = (doc: PolicyDocument) => listeners.forEach((listener) => listener(compilePolicy(doc, 'test')));
    install({ apiVersion: 'meshfetch/v1', services: { a: { endpoints: ['http://127.0.0.1:2'] }, b: {} } });
    expect(states.size).to.equal(2); // a (still has endpoints) and the stray name; b lost its endpoints
    expect(states.get({ service: 'a', endpoints: ENDPOINTS })).to.equal(a);
    shutdown.abort();
    expect(states.size).to.equal(0);
    expect(listeners.size).to.equal(0);
  });
});

// The calls below end at the endpoint layer (no endpoints), so no transport is involved.
describe('per-service state through the mesh', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('keeps a service\'s state across policy revisions, and drops it when a revision removes the service', async function () {
    const srv = await h.server([{ status: 503 }, { status: 200 }, { status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }]);
    // ratio 0: calls add nothing; a reserve of 0.1/s × 10 s = 1 retry
    const policy = () => upPolicy(srv.origin, { retry: { budget: { ratio: 0, minPerSecond: 0.1 } } });
    const mesh = h.mesh({ ...policy(), revision: 'r1' });
    const status = async (): Promise<number> => {
      const res = await mesh.client('up').fetch('/');
      await res.arrayBuffer();
      return res.status;
    };
    expect(await status()).to.equal(200); // 503, then the one retry
    expect(await status()).to.equal(503); // the budget is spent
    mesh.setPolicy({ ...policy(), revision: 'r2' });
    expect(await status()).to.equal(503); // a new revision keeping the service keeps its (spent) budget
    mesh.setPolicy({ apiVersion: 'meshfetch/v1', revision: 'r3' }); // the service leaves the policy
    mesh.setPolicy({ ...policy(), revision: 'r4' });
    expect(await status()).to.equal(200); // back with a fresh budget: 503, then a retry
    expect(srv.requests.length).to.equal(6);
  });

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
