import { expect } from 'chai';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { DURATION_BUCKETS } from '../../lib/index.ts';
import { MeshEvents } from '../../lib/events.ts';
import { MeshMetrics } from '../../lib/telemetry/metrics.ts';
import { Harness, upPolicy } from '../helpers/fault-server.ts';
import { installOtel } from '../helpers/otel.ts';
import type { Otel } from '../helpers/otel.ts';

const ITEM_ROUTE = { routes: [{ name: 'get-item', match: { method: 'GET', path: '/items/:id' } }] };

function points(metric: { dataPoints: unknown[] } | undefined): DataPoint<Histogram>[] {
  expect(metric, 'metric recorded').not.to.equal(undefined);
  return metric!.dataPoints as DataPoint<Histogram>[];
}

describe('metrics (real OpenTelemetry SDK metric reader)', function () {
  const h = new Harness();
  let otel: Otel;
  beforeEach(() => (otel = installOtel()));
  afterEach(async () => {
    await h.close();
    await otel.uninstall();
  });

  it('http.client.request.duration per attempt and meshfetch.client.call.duration per call, in seconds, semconv buckets, route labels', async function () {
    const srv = await h.server([{ status: 503 }], { status: 200, body: 'ok' });
    const mesh = h.mesh(upPolicy(srv.origin, ITEM_ROUTE), { service: 'checkout' });
    for (const id of [1, 2, 3]) await (await mesh.client('up').fetch(`/items/${id}?q=${id}`)).text();
    const collected = await otel.collect();
    const port = Number(new URL(srv.origin).port);

    const attempt = collected.get('http.client.request.duration')!;
    expect(attempt.descriptor.unit).to.equal('s');
    const attemptPoints = points(attempt);
    // Three raw paths, one label set per status: the path never becomes a label.
    expect(attemptPoints.map((p) => [p.attributes['http.response.status_code'], p.value.count])).to.have.deep.members([
      [503, 1],
      [200, 3],
    ]);
    for (const point of attemptPoints) {
      expect(point.value.buckets.boundaries).to.deep.equal(DURATION_BUCKETS);
      expect(point.value.sum).to.be.greaterThan(0).and.lessThan(5);
      expect(point.attributes).to.include({
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': port,
        'meshfetch.caller': 'checkout',
        'meshfetch.service': 'up',
        'meshfetch.route': 'get-item',
      });
    }
    expect(attemptPoints.find((p) => p.attributes['http.response.status_code'] === 503)!.attributes['error.type']).to.equal('503');

    const call = points(collected.get('meshfetch.client.call.duration'));
    expect(call).to.have.length(1);
    expect(call[0]!.value.count).to.equal(3);
    expect(call[0]!.attributes).to.deep.equal({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'meshfetch.caller': 'checkout',
      'meshfetch.service': 'up',
      'meshfetch.route': 'get-item',
    });

    const retries = collected.get('meshfetch.client.retries')!;
    expect(retries.dataPoints.map((p) => [p.value, p.attributes])).to.deep.equal([
      [1, { 'meshfetch.caller': 'checkout', 'meshfetch.service': 'up', 'meshfetch.route': 'get-item' }],
    ]);
  });

  it('an unknown method is labelled _OTHER, so it cannot mint a label', async function () {
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin));
    await (await mesh.client('up').fetch('/x', { method: 'BREW' })).text();
    const call = points((await otel.collect()).get('meshfetch.client.call.duration'));
    expect(call.map((p) => p.attributes['http.request.method'])).to.deep.equal(['_OTHER']);
  });

  it('breaker state, limit rejections, budget exhaustion, ejections and certificate expiry from the mesh events', async function () {
    const events = new MeshEvents();
    const meshMetrics = new MeshMetrics(events, 'checkout');
    try {
      events.emit('circuit', { service: 'payments', route: undefined, state: 'open', previous: 'closed' });
      events.emit('circuit', { service: 'search', route: 'query', state: 'half-open', previous: 'open' });
      events.emit('limited', { service: 'payments', route: undefined, limit: 'rate' });
      events.emit('limited', { service: 'payments', route: undefined, limit: 'rate' });
      events.emit('budgetExhausted', { service: 'payments', route: undefined, attempt: 2 });
      events.emit('ejection', { service: 'payments', endpoint: 'http://10.0.0.1:80', ejected: true, duration: 30_000 });
      events.emit('ejection', { service: 'payments', endpoint: 'http://10.0.0.1:80', ejected: false, duration: 0 });
      const notAfter = Date.now() + 3_600_000;
      events.emit('certificate', { state: 'loaded', notAfter, subject: 'spiffe://meshfetch.local/checkout', reason: undefined });
      const collected = await otel.collect();

      const circuit = collected.get('meshfetch.client.circuit.state')!;
      expect(circuit.dataPoints.map((p) => [p.attributes['meshfetch.service'], p.attributes['meshfetch.route'], p.value])).to.have.deep.members([
        ['payments', undefined, 2],
        ['search', 'query', 1],
      ]);
      const limited = collected.get('meshfetch.client.limited')!;
      expect(limited.dataPoints.map((p) => [p.attributes['meshfetch.limit'], p.value])).to.deep.equal([['rate', 2]]);
      expect(collected.get('meshfetch.client.retry_budget.exhausted')!.dataPoints.map((p) => p.value)).to.deep.equal([1]);
      expect(collected.get('meshfetch.client.endpoint.ejections')!.dataPoints.map((p) => p.value)).to.deep.equal([1]);
      const expiry = collected.get('meshfetch.tls.certificate.time_to_expiry')!;
      expect(expiry.descriptor.unit).to.equal('s');
      const seconds = expiry.dataPoints[0]!.value as number;
      expect(seconds).to.be.within(3_590, 3_600);
      expect(collected.get('meshfetch.tls.certificate.events')!.dataPoints.map((p) => [p.attributes['meshfetch.certificate.state'], p.value])).to.deep.equal([['loaded', 1]]);

      events.emit('circuit', { service: 'payments', route: undefined, state: 'closed', previous: 'half-open' });
      const after = (await otel.collect()).get('meshfetch.client.circuit.state')!;
      expect(after.dataPoints.find((p) => p.attributes['meshfetch.service'] === 'payments')!.value).to.equal(0);
    } finally {
      meshMetrics.close();
    }
    // After close() the events are no longer counted.
    events.emit('limited', { service: 'payments', route: undefined, limit: 'rate' });
    const closed = (await otel.collect()).get('meshfetch.client.limited')!;
    expect(closed.dataPoints.map((p) => p.value)).to.deep.equal([2]);
  });

  it('a MeterProvider registered after createMesh() still gets the metrics', async function () {
    await otel.uninstall();
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin));
    await (await mesh.client('up').fetch('/before')).text(); // no SDK yet: recorded nowhere
    otel = installOtel();
    await (await mesh.client('up').fetch('/after')).text();
    const call = points((await otel.collect()).get('meshfetch.client.call.duration'));
    expect(call.map((p) => p.value.count)).to.deep.equal([1]);
  });
});
