import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import type { PolicyDocument } from '../../lib/policy/types.ts';
import { paymentsPolicy, revisionInForce, startTestControlPlane } from '../helpers/control-plane.ts';
import { createMesh } from '../../lib/index.ts';
import { Harness, recordEvents } from '../helpers/fault-server.ts';
import type { FaultServer } from '../helpers/fault-server.ts';
import { histogramPoints, installOtel } from '../helpers/otel.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const V1 = 'meshfetch/v1' as const;

function canaryPolicy(stable: FaultServer, canary: FaultServer, weights: [number, number], extra: Record<string, unknown> = {}): PolicyDocument {
  return {
    apiVersion: V1,
    services: {
      payments: { endpoints: [stable.origin], split: [{ service: 'payments', weight: weights[0] }, { service: 'payments-canary', weight: weights[1] }], ...extra },
      'payments-canary': { endpoints: [canary.origin] },
    },
  };
}

/** `total` calls, `parallel` at a time; each body is read to its end. */
async function callMany(send: () => Promise<Response>, total: number, parallel = 20): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++;
      const res = await send();
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

describe('traffic split (real loopback upstreams)', function () {
  this.timeout(60_000);
  const h = new Harness();
  afterEach(() => h.close());

  it('a 90/10 split over 10,000 calls sends 10 % ± 1.5 points to the canary, every call to a real upstream', async () => {
    const [stable, canary] = await Promise.all([h.server(), h.server()]);
    const mesh = h.mesh(canaryPolicy(stable, canary, [90, 10]), { random: seededRandom(11) });
    const client = mesh.client('payments');
    await callMany(() => client.fetch('/charges'), 10_000);
    expect(stable.requests.length + canary.requests.length).to.equal(10_000);
    const share = (canary.requests.length / 10_000) * 100;
    expect(share).to.be.within(8.5, 11.5);
  });

  it('over 2,000 calls with Math.random, a 50/30/20 split lands within 4 standard deviations of each weight', async () => {
    const [a, b, c] = await Promise.all([h.server(), h.server(), h.server()]);
    const mesh = h.mesh(
      {
        apiVersion: V1,
        services: {
          a: { endpoints: [a.origin], split: [{ service: 'a', weight: 5 }, { service: 'b', weight: 3 }, { service: 'c', weight: 2 }] },
          b: { endpoints: [b.origin] },
          c: { endpoints: [c.origin] },
        },
      },
      { random: Math.random },
    );
    await callMany(() => mesh.client('a').fetch('/'), 2_000);
    for (const [server, p] of [[a, 0.5], [b, 0.3], [c, 0.2]] as const) {
      const sd = Math.sqrt((2_000 * p * (1 - p)));
      expect(Math.abs(server.requests.length - 2_000 * p)).to.be.below(4 * sd);
    }
  });

  it('weight 0 drains a backend; a route backend sends that route to one service only', async () => {
    const [stable, canary] = await Promise.all([h.server(), h.server()]);
    const mesh = h.mesh(canaryPolicy(stable, canary, [1, 0], { routes: [{ name: 'beta', match: { prefix: '/', headers: { 'x-beta': 'true' } }, backend: 'payments-canary' }] }), {
      random: seededRandom(3),
    });
    await callMany(() => mesh.client('payments').fetch('/x'), 200);
    expect(canary.requests.length).to.equal(0);
    await callMany(() => mesh.client('payments').fetch('/x', { headers: { 'x-beta': 'true' } }), 50);
    expect(canary.requests.length).to.equal(50);
    expect(stable.requests.length).to.equal(200);
  });

  it('the caller\'s route policy applies and a retry may go to another backend of the split', async () => {
    // The first draw picks the canary (which answers 503), the second the stable backend.
    const canary = await h.server([], { status: 503 });
    const stable = await h.server();
    const draws = [0.95, 0.1];
    const mesh = h.mesh(canaryPolicy(stable, canary, [90, 10], { retry: { attempts: 2, backoff: { base: '1ms', max: '1ms' } } }), {
      random: () => draws.shift() ?? 0,
    });
    const events = recordEvents(mesh);
    const res = await mesh.client('payments').fetch('/charges');
    await res.arrayBuffer();
    expect(res.status).to.equal(200);
    expect([canary.requests.length, stable.requests.length]).to.deep.equal([1, 1]);
    expect(events.attempt.map((e) => [e.service, e.backend, e.status])).to.deep.equal([
      ['payments', 'payments-canary', 503],
      ['payments', 'payments', 200],
    ]);
    expect(events.call.map((e) => [e.service, e.attempts])).to.deep.equal([['payments', 2]]);
    events.dispose();
  });

  it('the chosen backend\'s endpoints are balanced by that backend (its own endpoints, not the logical service\'s)', async () => {
    const [stable, c1, c2] = await Promise.all([h.server(), h.server(), h.server()]);
    const mesh = h.mesh(
      {
        apiVersion: V1,
        services: {
          payments: { endpoints: [stable.origin], split: [{ service: 'payments-canary', weight: 1 }] },
          'payments-canary': { endpoints: [c1.origin, c2.origin], loadBalancer: { strategy: 'round-robin' } },
        },
      },
      { random: seededRandom(5) },
    );
    await callMany(() => mesh.client('payments').fetch('/'), 100, 1);
    expect(stable.requests.length).to.equal(0);
    expect([c1.requests.length, c2.requests.length]).to.deep.equal([50, 50]);
  });

  it('a backend\'s own circuit breaker opens on its failures and its share goes to the other backends until it probes again', async () => {
    const canary = await h.server([], { status: 503 });
    const stable = await h.server();
    const policy = canaryPolicy(stable, canary, [50, 50], { retry: null, circuitBreaker: null });
    policy.services!['payments-canary'] = {
      endpoints: [canary.origin],
      circuitBreaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeout: '1h' },
      outlierDetection: null,
    };
    const clock = h.fakeClock(['Date']);
    const mesh = h.mesh(policy, { random: seededRandom(13) });
    const events = recordEvents(mesh);
    while (!events.circuit.some((e) => e.state === 'open') && canary.requests.length < 50) await (await mesh.client('payments').fetch('/')).arrayBuffer();
    expect(events.circuit.map((e) => [e.service, e.state])).to.deep.equal([['payments-canary', 'open']]);
    const sentToCanary = canary.requests.length;
    expect(sentToCanary).to.be.within(5, 10);
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await mesh.client('payments').fetch('/');
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses.every((status) => status === 200)).to.equal(true);
    expect(canary.requests.length).to.equal(sentToCanary);
    expect(mesh.stats().services['payments-canary']!.breaker).to.equal('open');
    // Past its reset timeout, the canary's next pick is a half-open probe; it fails, and the circuit opens again.
    clock.tick(3_600_001);
    for (let i = 0; i < 100; i++) await (await mesh.client('payments').fetch('/')).arrayBuffer();
    expect(canary.requests.length).to.equal(sentToCanary + 1);
    expect(events.circuit.map((e) => e.state)).to.deep.equal(['open', 'half-open', 'open']);
    events.dispose();
  });

  it('spans and the attempt metric name the logical service and the backend actually called', async () => {
    const otel = installOtel();
    try {
      const [stable, canary] = await Promise.all([h.server(), h.server()]);
      const mesh = h.mesh(canaryPolicy(stable, canary, [0, 1]));
      await (await mesh.client('payments').fetch('/x')).arrayBuffer();
      const spans = otel.spans.getFinishedSpans();
      const attempt = spans.find((s) => s.kind === 2)!;
      expect(attempt.attributes).to.include({ 'meshfetch.service': 'payments', 'meshfetch.backend': 'payments-canary', 'server.port': Number(new URL(canary.origin).port) });
      const call = spans.find((s) => s.kind === 0)!;
      expect(call.attributes).to.include({ 'meshfetch.service': 'payments' });
      const points = histogramPoints((await otel.collect()).get('http.client.request.duration'));
      expect(points.map((p) => [p.attributes['meshfetch.service'], p.attributes['meshfetch.backend']])).to.deep.equal([['payments', 'payments-canary']]);
    } finally {
      await otel.uninstall();
    }
  });
});

describe('traffic split through the control plane', function () {
  this.timeout(30_000);
  const h = new Harness();
  afterEach(() => h.close());

  it('a weight changed through the control plane applies to the next call', async () => {
    const [stable, canary] = await Promise.all([h.server(), h.server()]);
    const initial = canaryPolicy(stable, canary, [100, 0]);
    const cp = await startTestControlPlane(initial, { logLevel: 'silent' });
    h.closeWithServers(() => cp.close());
    const mesh = createMesh({ controlPlane: cp.url, logLevel: 'silent', env: {}, random: seededRandom(7) });
    h.closeWithServers(() => mesh.close());
    await mesh.ready();
    await callMany(() => mesh.client('payments').fetch('/'), 20, 1);
    expect(canary.requests.length).to.equal(0);
    const put = await cp.publish(canaryPolicy(stable, canary, [0, 100]));
    expect(put.status).to.equal(200);
    await revisionInForce(mesh, put.body.revision!);
    await (await mesh.client('payments').fetch('/')).arrayBuffer();
    expect([stable.requests.length, canary.requests.length]).to.deep.equal([20, 1]);
    // A split to an unknown service is refused by the control plane; the weights in force stay.
    const bad = await cp.publish({ ...paymentsPolicy(stable.origin, { split: [{ service: 'nowhere', weight: 1 }] }) });
    expect(bad.status).to.equal(422);
    expect(JSON.stringify(bad.body)).to.include('services.payments.split[0].service: unknown service \\"nowhere\\"');
    await (await mesh.client('payments').fetch('/')).arrayBuffer();
    expect(canary.requests.length).to.equal(2);
  });

  it('a hand edit of the control plane\'s policy file that makes the split loop is refused; the weights in force stay', async () => {
    const [stable, canary] = await Promise.all([h.server(), h.server()]);
    const cp = await startTestControlPlane(canaryPolicy(stable, canary, [0, 100]), { logLevel: 'silent' });
    h.closeWithServers(() => cp.close());
    const mesh = createMesh({ controlPlane: cp.url, logLevel: 'silent', env: {}, random: seededRandom(9) });
    h.closeWithServers(() => mesh.close());
    await mesh.ready();
    const before = cp.cp.revision();
    const refused = cp.logger.next('policy file edit refused');
    const looping = canaryPolicy(stable, canary, [50, 50]);
    looping.services!['payments-canary'] = { endpoints: [canary.origin], split: [{ service: 'payments', weight: 1 }] };
    writeFileSync(cp.policyFile, JSON.stringify(looping));
    expect((await refused)?.error).to.contain('services.payments.split: the split loops: payments → payments-canary → payments');
    expect(cp.cp.revision()).to.equal(before);
    await (await mesh.client('payments').fetch('/')).arrayBuffer();
    expect([stable.requests.length, canary.requests.length]).to.deep.equal([0, 1]);
  });
});
