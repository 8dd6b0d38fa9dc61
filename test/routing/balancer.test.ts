import { expect } from 'chai';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DEFAULT_STACK } from '../../lib/index.ts';
import type { Layer } from '../../lib/index.ts';
import { Harness, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import type { FaultServer } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';

/** A deterministic source of randomness (mulberry32), so a run can be repeated. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A port nothing listens on: bound, then closed. */
async function refusedOrigin(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const count = (srv: FaultServer): number => srv.requests.length;
const NO_RETRY_NO_BREAKER = { retry: null, circuitBreaker: null } as const;

describe('load balancing over several real loopback endpoints', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('shifts traffic away from a slow endpoint (P2C over peak-EWMA, weighted by requests in flight)', async function () {
    const fast1 = await h.server([], { status: 200 });
    const fast2 = await h.server([], { status: 200 });
    const slow = await h.server([], { delay: 40, then: { status: 200 } });
    // A 200 ms decay instead of Linkerd's 10 s, so that estimates settle within this short run.
    const loadBalancer = { decay: '200ms' } as const;
    const mesh = h.mesh(upPolicy([fast1.origin, slow.origin, fast2.origin], { ...NO_RETRY_NO_BREAKER, loadBalancer }), { random: seeded(7) });
    const client = mesh.client('up');
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 4 }, async () => (await client.fetch('/x')).arrayBuffer()));
    }
    const total = count(fast1) + count(fast2) + count(slow);
    expect(total).to.equal(120);
    expect(count(slow) / total).to.be.below(0.15);
    expect(count(fast1)).to.be.above(20);
    expect(count(fast2)).to.be.above(20);
  });

  it('ejects a failing endpoint, sends nothing to it while ejected, probes it once back, and readmits it', async function () {
    const clock = h.fakeClock(['Date', 'performance']); // ejection time stands still until ticked
    const good1 = await h.server();
    const good2 = await h.server();
    const bad = await h.server([], { status: 503 });
    const outlierDetection = { consecutiveFailures: 2, baseEjectionTime: '1s', maxEjectionTime: '10s', maxEjectedPercent: 34 } as const;
    // Round-robin, so that the counts below do not depend on latencies (all 0 ms on a frozen clock).
    const loadBalancer = { strategy: 'round-robin' } as const;
    const mesh = h.mesh(upPolicy([good1.origin, bad.origin, good2.origin], { ...NO_RETRY_NO_BREAKER, outlierDetection, loadBalancer }));
    const events = recordEvents(mesh);
    const client = mesh.client('up');
    const call = async (): Promise<number> => {
      const res = await client.fetch('/x');
      await res.arrayBuffer();
      return res.status;
    };
    for (let i = 0; i < 200 && events.ejection.length === 0; i++) await call();
    expect(events.ejection).to.deep.equal([{ service: 'up', endpoint: bad.origin, ejected: true, duration: 1_000 }]);
    expect(count(bad)).to.equal(2);

    for (let i = 0; i < 30; i++) expect(await call()).to.equal(200);
    expect(count(bad)).to.equal(2); // out of rotation

    clock.tick(1_000);
    for (let i = 0; i < 30 && count(bad) === 2; i++) await call();
    expect(count(bad)).to.equal(3); // one probe; it failed: ejected again, for twice as long
    expect(events.ejection.at(-1)).to.deep.equal({ service: 'up', endpoint: bad.origin, ejected: true, duration: 2_000 });

    bad.defaultStep = { status: 200 };
    clock.tick(2_000);
    for (let i = 0; i < 30 && events.ejection.length < 3; i++) await call();
    expect(events.ejection.at(-1)).to.deep.equal({ service: 'up', endpoint: bad.origin, ejected: false, duration: 0 });
    const before = count(bad);
    for (let i = 0; i < 30; i++) await call();
    expect(count(bad) - before).to.equal(10); // back in rotation: a third of the calls
  });

  it('never ejects every endpoint, whatever the share allowed', async function () {
    h.fakeClock(['Date', 'performance']); // no ejection ends during the test
    const a = await h.server([], { status: 503 });
    const b = await h.server([], { status: 503 });
    const outlierDetection = { consecutiveFailures: 1, maxEjectedPercent: 100 } as const;
    const mesh = h.mesh(upPolicy([a.origin, b.origin], { ...NO_RETRY_NO_BREAKER, outlierDetection }), { random: seeded(3) });
    const events = recordEvents(mesh);
    for (let i = 0; i < 20; i++) await (await mesh.client('up').fetch('/x')).arrayBuffer();
    expect(events.ejection.filter((e) => e.ejected).length).to.equal(1);
    expect(count(a) + count(b)).to.equal(20); // the one left in rotation still takes the calls
  });

  it('an attempt a middleware after the pick throws on (instead of rejecting) is settled: its endpoint is not left looking busy', async function () {
    const a = await h.server([], { status: 200, body: 'a' });
    const b = await h.server([], { status: 200, body: 'b' });
    let throwNext = true;
    const mesh = h.mesh(upPolicy([a.origin, b.origin], { circuitBreaker: null, retry: null }), {
      middleware: [{ name: 'throws-once', before: 'tls', use: (next) => (req, ctx) => {
        if (!throwNext) return next(req, ctx);
        throwNext = false;
        throw new Error('middleware bug');
      } }],
    });
    expect(((await rejection(mesh.client('up').fetch('/x'))) as Error).message).to.equal('middleware bug'); // it had picked a
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push(await (await mesh.client('up').fetch('/x')).text());
    // random is pinned, so peak-EWMA picks a while the costs are even; an attempt counted in flight forever would double a's.
    expect(bodies).to.deep.equal(['a', 'a', 'a', 'a']);
  });

  it('the same through a layer of the user\'s own (createMesh option layers): the attempt it throws on is settled', async function () {
    const a = await h.server([], { status: 200, body: 'a' });
    const b = await h.server([], { status: 200, body: 'b' });
    let throwNext = true;
    const throwsOnce: Layer = {
      name: 'throws-once',
      why: 'a test: a layer that throws instead of rejecting, once',
      create: () => (next) => (req, ctx) => {
        if (!throwNext) return next(req, ctx);
        throwNext = false;
        throw new Error('layer bug');
      },
    };
    const tls = DEFAULT_STACK.findIndex((layer) => layer.name === 'tls');
    const layers = [...DEFAULT_STACK.slice(0, tls), throwsOnce, ...DEFAULT_STACK.slice(tls)];
    const mesh = h.mesh(upPolicy([a.origin, b.origin], { circuitBreaker: null, retry: null }), { layers });
    expect(((await rejection(mesh.client('up').fetch('/x'))) as Error).message).to.equal('layer bug');
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push(await (await mesh.client('up').fetch('/x')).text());
    expect(bodies).to.deep.equal(['a', 'a', 'a', 'a']);
  });

  it('sends a retry to another endpoint than the attempt that failed', async function () {
    const a = await h.server([{ status: 503 }]);
    const b = await h.server([{ status: 503 }]);
    const mesh = h.mesh(upPolicy([a.origin, b.origin], { circuitBreaker: null, retry: { attempts: 2, backoff: { base: '0ms', max: '0ms' } } }));
    const res = await mesh.client('up').fetch('/x');
    await res.arrayBuffer();
    expect(res.status).to.equal(503); // each endpoint answered its one 503
    expect([count(a), count(b)]).to.deep.equal([1, 1]);
    expect([a.requests[0]!.attempt, b.requests[0]!.attempt].sort()).to.deep.equal([1, 2]);
  });

  it('sends a retry to another endpoint even when the one that refused looks cheaper (a 429 is not a failure of the endpoint)', async function () {
    const a = await h.server([{ status: 200 }, { status: 200 }, { status: 200 }, { status: 429 }], { status: 200, body: 'a' });
    const b = await h.server([], { status: 200, body: 'b' });
    const mesh = h.mesh(upPolicy([a.origin, b.origin], { circuitBreaker: null, retry: { attempts: 2, backoff: { base: '0ms', max: '0ms' } } }));
    // Quick answers from a (random is pinned, so peak-EWMA picks a while the costs are even): a now
    // costs far less than b's 30 ms initial estimate.
    for (let i = 0; i < 3; i++) await (await mesh.client('up').fetch('/x')).arrayBuffer();
    const res = await mesh.client('up').fetch('/x');
    expect(await res.text()).to.equal('b');
    expect([count(a), count(b)]).to.deep.equal([4, 1]);
  });

  it('requeues a POST whose connection was refused on the second endpoint, counted against the budget', async function () {
    const refused = await refusedOrigin();
    const good = await h.server();
    // random pinned to 0 (the harness's): the first choice is the first endpoint, the refused one.
    const mesh = h.mesh(upPolicy([refused, good.origin], { circuitBreaker: null }));
    const events = recordEvents(mesh);
    const res = await mesh.client('up').fetch('/charges', { method: 'POST', body: '{"amount":5}' });
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
    expect(good.requests.map((r) => [r.method, r.body.toString(), r.attempt])).to.deep.equal([['POST', '{"amount":5}', 2]]);
    expect(events.retry.map((e) => (e.reason as { code?: string }).code)).to.deep.equal(['MESHFETCH_CONNECT']);
    expect(mesh.stats().services.up!.retries).to.equal(1);
  });

  it('does not repeat a POST that reached the upstream and failed there', async function () {
    const reset = await h.server([{ reset: true }]);
    const good = await h.server();
    const mesh = h.mesh(upPolicy([reset.origin, good.origin], { circuitBreaker: null }));
    const events = recordEvents(mesh);
    const err = await mesh.client('up').fetch('/charges', { method: 'POST', body: 'x' }).then(() => undefined, (e: unknown) => e);
    expect(err).to.include({ code: 'MESHFETCH_RESET' });
    expect(count(good)).to.equal(0);
    expect(events.giveUp.map((e) => e.why)).to.deep.equal(['not-idempotent']);
  });

  it('keeps the state of endpoints that stay when a new policy revision changes the list', async function () {
    h.fakeClock(['Date', 'performance']); // the ejection lasts the whole test
    const good = await h.server();
    const bad = await h.server([], { status: 503 });
    const added = await h.server();
    const outlierDetection = { consecutiveFailures: 1, maxEjectedPercent: 50 } as const;
    const service = { ...NO_RETRY_NO_BREAKER, outlierDetection, loadBalancer: { strategy: 'round-robin' } } as const;
    const mesh = h.mesh(upPolicy([good.origin, bad.origin], service));
    const events = recordEvents(mesh);
    for (let i = 0; i < 20 && events.ejection.length === 0; i++) await (await mesh.client('up').fetch('/x')).arrayBuffer();
    expect(events.ejection).to.have.length(1);
    const inFlight = mesh.client('up').fetch('/in-flight');
    mesh.setPolicy(upPolicy([added.origin, bad.origin, good.origin], service));
    expect((await inFlight).status).to.equal(200);
    const before = count(bad);
    for (let i = 0; i < 30; i++) await (await mesh.client('up').fetch('/x')).arrayBuffer();
    expect(count(bad)).to.equal(before); // still ejected under the new revision
    expect(count(added)).to.equal(15); // the rest alternate between the endpoints in rotation
  });
});
