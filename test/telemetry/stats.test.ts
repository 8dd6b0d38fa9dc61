import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { createMesh, mergeFigures, MeshError, OTHER, UNNAMED_ROUTE } from '../../lib/index.ts';
import type { CallEnded, MeshStatsSnapshot } from '../../lib/index.ts';
import { MeshEvents } from '../../lib/events.ts';
import { StatsCollector } from '../../lib/telemetry/stats.ts';
import { Harness, TRANSPORTS, upPolicy } from '../helpers/fault-server.ts';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

for (const { name, create } of TRANSPORTS) {
  describe(`mesh.stats() (${name} transport, real loopback server)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('3 calls, one retried once, one failing: figures match a hand count, after retries and per attempt', async function () {
      // call 1: 200 · call 2: 503, retried, 200 · call 3: 500 (not retryable)
      const srv = await h.server([{ status: 200 }, { status: 503 }, { status: 200 }, { status: 500 }]);
      const mesh = h.mesh(upPolicy(srv.origin), { service: 'checkout' });
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await mesh.client('up').fetch(`/call/${i}`);
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      expect(statuses).to.deep.equal([200, 200, 500]);
      expect(srv.requests).to.have.length(4);

      const stats = mesh.stats();
      expect(stats).to.include({ caller: 'checkout', window: 60_000 });
      const up = stats.services.up!;
      expect(up).to.include({
        requests: 3,
        successes: 2,
        failures: 1,
        attempts: 4,
        attemptSuccesses: 2,
        attemptFailures: 2,
        retries: 1,
        hedges: 0,
        budgetExhausted: 0,
        breaker: 'closed',
      });
      expect(up.successRate).to.be.closeTo(2 / 3, 1e-12); // what the caller saw
      expect(up.attemptSuccessRate).to.equal(0.5); // what the upstream did
      expect(up.rate).to.equal(3); // 3 calls, under a second into the window
      const { p50, p95, p99 } = up.latency!;
      expect(p50).to.be.greaterThan(0);
      expect(p50).to.be.at.most(p95);
      expect(p95).to.be.at.most(p99);
      expect(Object.keys(up.routes)).to.deep.equal([UNNAMED_ROUTE]);
      expect(up.routes[UNNAMED_ROUTE]).to.include({ requests: 3, attempts: 4 });
    });
  });
}

describe('createMesh option statsWindow', function () {
  it('rejects a window under a second, naming the option', function () {
    expect(() => createMesh({ env: {}, statsWindow: 10 })).to.throw(MeshError, 'createMesh option statsWindow: expected milliseconds >= 1000, got 10');
  });

  it('sets the window mesh.stats() reports over', async function () {
    const mesh = createMesh({ env: {}, statsWindow: 30_000 });
    expect(mesh.stats().window).to.equal(30_000);
    await mesh.close();
  });
});

function call(service: string, duration: number, outcome: CallEnded['outcome'] = 'success', route: string | undefined = 'r'): CallEnded {
  return { service, route, method: 'GET', status: outcome === 'success' ? 200 : 503, errorType: undefined, outcome, duration, attempts: 1 };
}

describe('StatsCollector (sliding window, DDSketch)', function () {
  let clock: InstalledClock;
  beforeEach(() => (clock = FakeTimers.install({ toFake: ['Date'], now: 1_000_000 })));
  afterEach(() => clock.uninstall());

  const collector = (events = new MeshEvents(), inPolicy = (s: string) => s === 'up') => ({
    events,
    stats: new StatsCollector(events, { caller: 'me', inPolicy }),
  });

  it('quantiles within 1 %, counted over the last minute only, with no timer', function () {
    const { events, stats } = collector();
    for (let ms = 1; ms <= 1_000; ms++) events.emit('call', call('up', ms));
    let up = stats.snapshot().services.up!;
    expect(up.requests).to.equal(1_000);
    expect(up.latency!.p50).to.be.closeTo(500, 5);
    expect(up.latency!.p95).to.be.closeTo(950, 9.5);
    expect(up.latency!.p99).to.be.closeTo(990, 9.9);

    clock.tick(30_000);
    for (let i = 0; i < 10; i++) events.emit('call', call('up', 5_000, 'failure'));
    up = stats.snapshot().services.up!;
    expect(up).to.include({ requests: 1_010, failures: 10 });
    expect(up.rate).to.be.closeTo(1_010 / 30, 1e-9); // 30 s into the window

    clock.tick(35_000); // the first thousand are now 65 s old
    up = stats.snapshot().services.up!;
    expect(up).to.include({ requests: 10, successes: 0, failures: 10, successRate: 0 });
    expect(up.rate).to.be.closeTo(10 / 60, 1e-9);
    expect(up.latency!.p50).to.be.closeTo(5_000, 50);

    clock.tick(61_000);
    expect(stats.snapshot().services).to.deep.equal({}); // idle for a whole window: dropped
  });

  it('a snapshot survives JSON, and figures from several processes merge as if one process had counted them all', function () {
    const a = collector();
    const b = collector();
    const all = collector();
    for (let ms = 1; ms <= 500; ms++) {
      a.events.emit('call', call('up', ms));
      all.events.emit('call', call('up', ms));
    }
    for (let ms = 501; ms <= 1_000; ms++) {
      b.events.emit('call', call('up', ms, ms % 10 === 0 ? 'failure' : 'success'));
      all.events.emit('call', call('up', ms, ms % 10 === 0 ? 'failure' : 'success'));
    }
    const wire = (snapshot: MeshStatsSnapshot): MeshStatsSnapshot => JSON.parse(JSON.stringify(snapshot)) as MeshStatsSnapshot;
    const merged = mergeFigures([wire(a.stats.snapshot()).services.up!, wire(b.stats.snapshot()).services.up!]);
    const single = all.stats.snapshot().services.up!;
    expect(merged).to.include({ requests: 1_000, successes: 950, failures: 50, successRate: 0.95 });
    expect(merged.latency).to.deep.equal(single.latency);
    expect(merged.rate).to.equal(a.stats.snapshot().services.up!.rate + b.stats.snapshot().services.up!.rate);
  });

  it('memory is bounded: services outside the policy get a few entries, then share one', function () {
    const { events, stats } = collector();
    for (let i = 0; i < 100; i++) events.emit('call', call(`svc-${i}`, 1));
    events.emit('call', call('up', 1));
    const services = stats.snapshot().services;
    expect(Object.keys(services)).to.have.length(16 + 1 + 1);
    expect(services[OTHER]!.requests).to.equal(100 - 16);
    expect(services.up!.requests).to.equal(1);
  });

  it('routes are bounded per service, and the breaker state is the worst of its routes', function () {
    const { events, stats } = collector();
    for (let i = 0; i < 200; i++) events.emit('call', call('up', 1, 'success', `route-${i}`));
    events.emit('circuit', { service: 'up', route: 'route-3', state: 'open', previous: 'closed' });
    events.emit('retry', { service: 'up', route: 'route-3', attempt: 2, delay: 10, reason: 503 });
    events.emit('giveUp', { service: 'up', route: 'route-3', attempts: 2, why: 'budget', reason: 503 });
    const up = stats.snapshot().services.up!;
    expect(Object.keys(up.routes)).to.have.length(128);
    expect(up.routes[OTHER]!.requests).to.equal(200 - 127);
    expect(up.routes['route-3']).to.include({ breaker: 'open', retries: 1 });
    expect(up.routes['route-3']!.giveUps).to.deep.equal({ budget: 1 });
    expect(up).to.include({ breaker: 'open', requests: 200, retries: 1 });
  });
});
