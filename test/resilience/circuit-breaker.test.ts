import { expect } from 'chai';
import { Readable } from 'node:stream';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import { MeshEvents } from '../../lib/events.ts';
import type { CircuitBreakerPolicy } from '../../lib/policy/types.ts';
import { DEFAULT_POLICY } from '../../lib/policy/defaults.ts';
import { DestinationBreaker } from '../../lib/resilience/circuit-breaker.ts';
import { Harness, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import type { FakeClock, FaultStep } from '../helpers/fault-server.ts';
import { testContext } from '../helpers/context.ts';
import { rejection } from '../helpers/rejection.ts';

const BREAKER = { volumeThreshold: 4, errorThresholdPercentage: 50, window: '10s', resetTimeout: '5s' } as const;
const fails = (n: number, status = 503): FaultStep[] => Array.from({ length: n }, () => ({ status }));

describe('circuit breaker (real loopback upstream, fake Date)', function () {
  const h = new Harness();
  let clock: FakeClock;
  beforeEach(() => {
    clock = h.fakeClock(['Date']); // the breaker's window and reset run on Date
  });
  afterEach(() => h.close());

  const breakerMesh = (origin: string, service = {}) => h.mesh(upPolicy(origin, { retry: null, circuitBreaker: BREAKER, ...service }));
  const status = async (promise: Promise<Response>): Promise<number> => {
    const res = await promise;
    await res.arrayBuffer();
    return res.status;
  };

  it('opens at the error threshold, fails fast without a request, probes once after resetTimeout and closes', async () => {
    const srv = await h.server(fails(4));
    const mesh = breakerMesh(srv.origin);
    const events = recordEvents(mesh);
    const client = mesh.client('up');
    for (let i = 0; i < 4; i++) expect(await status(client.fetch('/x'))).to.equal(503);
    expect(events.circuit).to.deep.equal([{ service: 'up', route: undefined, state: 'open', previous: 'closed' }]);
    expect(mesh.stats().services.up!.breaker).to.equal('open');

    const err = (await rejection(client.fetch('/x'))) as MeshError;
    expect(err).to.be.instanceOf(MeshError);
    expect(err).to.include({ code: ErrorCode.CircuitOpen, retryable: false, service: 'up' });
    expect(srv.requests.length).to.equal(4); // nothing reached the network

    clock.tick(4_999);
    expect(((await rejection(client.fetch('/x'))) as MeshError).code).to.equal(ErrorCode.CircuitOpen);
    clock.tick(1);
    expect(await status(client.fetch('/probe'))).to.equal(200);
    expect(srv.requests.map((r) => r.url).at(-1)).to.equal('/probe');
    expect(events.circuit.slice(1).map((e) => [e.previous, e.state])).to.deep.equal([
      ['open', 'half-open'],
      ['half-open', 'closed'],
    ]);
    expect(mesh.stats().services.up!.breaker).to.equal('closed');
    expect(await status(client.fetch('/x'))).to.equal(200);
  });

  it('reopens when the probe fails, and lets only one probe through at a time', async () => {
    const srv = await h.server([...fails(5), { delay: 30, then: { status: 200 } }]);
    const mesh = breakerMesh(srv.origin);
    const events = recordEvents(mesh);
    const client = mesh.client('up');
    for (let i = 0; i < 4; i++) await status(client.fetch('/x'));
    clock.tick(5_000);
    expect(await status(client.fetch('/probe-1'))).to.equal(503);
    expect(events.circuit.at(-1)).to.include({ previous: 'half-open', state: 'open' });
    clock.tick(5_000);
    const probe = client.fetch('/probe-2');
    const second = (await rejection(client.fetch('/while-probing'))) as MeshError;
    expect(second.code).to.equal(ErrorCode.CircuitOpen);
    expect(await status(probe)).to.equal(200);
    expect(events.circuit.at(-1)).to.include({ previous: 'half-open', state: 'closed' });
    expect(srv.requests.map((r) => r.url)).to.not.include('/while-probing');
  });

  it('does not count 4xx answers, nor calls its caller aborted', async () => {
    const srv = await h.server([...fails(6, 404), ...Array.from({ length: 6 }, (): FaultStep => ({ hang: true }))]);
    const mesh = breakerMesh(srv.origin);
    const events = recordEvents(mesh);
    const client = mesh.client('up');
    for (let i = 0; i < 6; i++) expect(await status(client.fetch('/missing'))).to.equal(404);
    for (let i = 0; i < 6; i++) {
      const controller = new AbortController();
      const call = client.fetch('/hang', { signal: controller.signal });
      await srv.request(7 + i);
      controller.abort(new Error('caller gave up'));
      expect(((await rejection(call)) as Error).message).to.equal('caller gave up');
    }
    expect(events.circuit).to.deep.equal([]);
  });

  it('counts a call once, with its final outcome: retried 503s that end in a 200 are a success', async () => {
    const srv = await h.server([503, 503, 200, 503, 503, 200, 503, 503, 200, 503, 503, 200].map((s): FaultStep => ({ status: s })));
    const mesh = breakerMesh(srv.origin, { retry: { attempts: 3, backoff: { base: '0ms', max: '0ms' } } });
    const events = recordEvents(mesh);
    for (let i = 0; i < 4; i++) expect(await status(mesh.client('up').fetch('/x'))).to.equal(200);
    expect(srv.requests.length).to.equal(12); // 8 of 12 upstream answers failed, yet no call did
    expect(events.circuit).to.deep.equal([]);
  });

  it('keeps a breaker per route, named in its events', async () => {
    const srv = await h.server();
    srv.defaultStep = { status: 500 };
    const mesh = breakerMesh(srv.origin, { routes: [{ name: 'broken', match: { path: '/broken' } }] });
    const events = recordEvents(mesh);
    for (let i = 0; i < 4; i++) await status(mesh.client('up').fetch('/broken'));
    expect(events.circuit).to.deep.equal([{ service: 'up', route: 'broken', state: 'open', previous: 'closed' }]);
    srv.defaultStep = { status: 200 };
    expect(await status(mesh.client('up').fetch('/other'))).to.equal(200); // the service's own circuit is closed
    const stats = mesh.stats().services.up!;
    expect([stats.breaker, stats.routes.broken!.breaker, stats.routes['(unnamed)']!.breaker]).to.deep.equal(['open', 'open', 'closed']);
  });
  it('forgets an idle breaker (swept on a later call, no timer), and shuts breakers down on mesh.close()', async () => {
    const srv = await h.server();
    srv.defaultStep = { status: 500 };
    const mesh = breakerMesh(srv.origin, { routes: [{ name: 'a', match: { path: '/a' } }, { name: 'b', match: { path: '/b' } }] });
    const events = recordEvents(mesh);
    for (let i = 0; i < 4; i++) await status(mesh.client('up').fetch('/a'));
    expect(events.circuit.map((e) => [e.route, e.state])).to.deep.equal([['a', 'open']]);
    clock.tick(15_001); // idle for longer than its window (10 s) and reset timeout (5 s)
    await status(mesh.client('up').fetch('/b'));
    expect(events.circuit.map((e) => [e.route, e.state])).to.deep.equal([['a', 'open'], ['a', 'closed']]);
    expect(mesh.stats().services.up!.routes.a!.breaker).to.equal('closed');

    for (let i = 0; i < 3; i++) await status(mesh.client('up').fetch('/b'));
    expect(events.circuit.at(-1)).to.include({ route: 'b', state: 'open' });
    await mesh.close();
    expect(events.circuit.at(-1)).to.include({ route: 'b', state: 'closed', previous: 'open' });
  });
});

describe('circuit breaker: no timer per breaker', function () {
  const settings: CircuitBreakerPolicy = { ...DEFAULT_POLICY.circuitBreaker!, volumeThreshold: 1, errorThresholdPercentage: 10 };
  const answer = (status: number) => async () => ({ status, headers: {}, body: Readable.from([]) });
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  // Other suites' connections may start or end a timer meanwhile; 200 breakers with opossum's
  // defaults would hold 400 intervals (and 200 reset timers once open).
  const noNewTimers = (before: number): void => {
    expect(timers()).to.be.at.most(before + 2);
  };

  it('holds no timer while closed, open or half-open, for any number of destinations', async () => {
    const before = timers();
    const breakers = Array.from({ length: 200 }, (_, i) => new DestinationBreaker(`s${i}`, undefined, settings, new MeshEvents()));
    for (const b of breakers) await b.call(answer(200), {} as never, testContext(), settings, Date.now());
    noNewTimers(before);
    for (const b of breakers) await b.call(answer(503), {} as never, testContext(), settings, Date.now());
    expect(breakers.every((b) => b.state === 'open')).to.equal(true);
    noNewTimers(before); // opossum's reset timer was cleared as it opened
    const later = Date.now() + settings.resetTimeout;
    for (const b of breakers) await b.call(answer(200), {} as never, testContext(), settings, later);
    expect(breakers.every((b) => b.state === 'closed')).to.equal(true);
    noNewTimers(before);
    for (const b of breakers) b.dispose();
  });
});
