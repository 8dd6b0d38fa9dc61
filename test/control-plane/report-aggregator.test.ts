import { expect } from 'chai';
import FakeTimers from '@sinonjs/fake-timers';
import { ReportAggregator } from '../../lib/control-plane/report-aggregator.ts';
import type { StatsView } from '../../lib/control-plane/report-aggregator.ts';
import { heldBytes } from '../../lib/control-plane/held-report.ts';
import { parseStatsReport } from '../../lib/control-plane/report-parse.ts';
import { newSketch, sketchBins } from '../../lib/telemetry/tally.ts';
import { REPORT_VERSION, edgeReport } from '../../lib/telemetry/report.ts';
import type { EdgeFigures, EdgeReport, StatsReport } from '../../lib/telemetry/report.ts';
import { paymentsPolicy, startTestControlPlane } from '../helpers/control-plane.ts';

function edge(to: string, route: string, requests: number, latencies: number[], extra: Partial<EdgeFigures> = {}): EdgeReport {
  const sketch = newSketch();
  for (const ms of latencies) sketch.accept(ms);
  return edgeReport({
    to, route, requests, successes: requests, failures: 0, cancelled: 0, attempts: requests, attemptSuccesses: requests, attemptFailures: 0,
    retries: 0, hedges: 0, breaker: 'closed', latency: latencies.length > 0 ? sketchBins(sketch) : null, windowMs: 60_000, ...extra,
  });
}

const report = (service: string, instance: string, edges: EdgeReport[]): StatsReport => ({ v: REPORT_VERSION, service, instance, edges });
/** A report as the control plane takes it in: through its JSON and the parser. */
const held = (service: string, instance: string, edges: EdgeReport[]) => parseStatsReport(JSON.stringify(report(service, instance, edges)));

describe('ReportAggregator', () => {
  it('merges the latest report of each instance: counts add, sketches merge, a newer report replaces the older', () => {
    let now = 1_000_000;
    const aggregator = new ReportAggregator({ ttl: 30_000, now: () => now });
    aggregator.ingest(held('checkout', 'a', [edge('payments', 'charge', 5, [10, 10, 10, 10, 10])]));
    aggregator.ingest(held('checkout', 'a', [edge('payments', 'charge', 3, [10, 10, 10])]));
    aggregator.ingest(held('checkout', 'b', [edge('payments', 'charge', 2, [100, 100], { failures: 1, successes: 1, breaker: 'open' })]));
    now += 1;
    const view = aggregator.view({ window: 60_000 });
    expect(view.instances).to.equal(2);
    const [merged] = view.edges;
    expect(merged).to.include({ from: 'checkout', to: 'payments', requests: 5, successes: 4, failures: 1, instances: 2, breaker: 'open' });
    expect(merged!.successRate).to.equal(0.8);
    expect(merged!.latency!.p50).to.be.closeTo(10, 0.2);
    expect(merged!.latency!.p99).to.be.closeTo(100, 2);
    expect(merged!.rate).to.be.closeTo(5 / 60, 1e-9);
  });

  it('forgets an instance that stops reporting once the ttl has passed', () => {
    let now = 0;
    const aggregator = new ReportAggregator({ ttl: 30_000, now: () => now });
    aggregator.ingest(held('checkout', 'quiet', [edge('payments', 'charge', 4, [5])]));
    now = 10_000;
    aggregator.ingest(held('checkout', 'busy', [edge('payments', 'charge', 6, [5])]));
    now = 30_000;
    expect(aggregator.view({ window: 60_000 }).edges[0]!.requests).to.equal(10);
    now = 30_001;
    const view = aggregator.view({ window: 60_000 });
    expect(view.instances).to.equal(1);
    expect(view.edges[0]).to.include({ requests: 6, instances: 1 });
    now = 40_001;
    expect(aggregator.view({ window: 60_000 }).edges).to.deep.equal([]);
    expect(aggregator.size).to.equal(0);
  });

  it('holds at most maxInstances, forgetting the one heard from longest ago', () => {
    let now = 0;
    const aggregator = new ReportAggregator({ maxInstances: 2, now: () => now });
    for (const instance of ['a', 'b', 'a', 'c']) {
      now++;
      aggregator.ingest(held('checkout', instance, [edge('payments', instance, 1, [])]));
    }
    expect(aggregator.view({ window: 60_000 }).routes.map((r) => r.route).sort()).to.deep.equal(['a', 'c']);
  });
  it('shows the names of an instance\'s latest report, whether they changed or not', () => {
    const aggregator = new ReportAggregator();
    const routes = () => aggregator.view({ window: 60_000 }).routes.map((r) => `${r.to} ${r.route} ${r.requests}`);
    aggregator.ingest(held('checkout', 'a', [edge('payments', 'charge', 1, [1]), edge('payments', 'refund', 2, [1])]));
    aggregator.ingest(held('checkout', 'a', [edge('payments', 'charge', 3, [1]), edge('payments', 'refund', 4, [1])]));
    expect(routes()).to.deep.equal(['payments refund 4', 'payments charge 3']);
    aggregator.ingest(held('checkout', 'a', [edge('payments', 'charge', 5, [1]), edge('ledger', 'refund', 6, [1])]));
    expect(routes()).to.deep.equal(['ledger refund 6', 'payments charge 5']);
  });

  it('holds at most maxBytes of reports, forgetting the instance heard from longest ago', () => {
    let now = 0;
    const one = held('checkout', 'x', [edge('payments', 'charge', 3, [1, 2, 3])]);
    const aggregator = new ReportAggregator({ maxBytes: 2.5 * heldBytes(one), now: () => now });
    for (const instance of ['a', 'b', 'c', 'b']) {
      now++;
      aggregator.ingest(held('checkout', instance, [edge('payments', 'charge', 3, [1, 2, 3])]));
    }
    expect(aggregator.size).to.equal(2);
    expect(aggregator.bytes).to.equal(2 * heldBytes(one));
    expect(aggregator.view({ window: 60_000 }).edges[0]).to.include({ requests: 6, instances: 2 });
  });

  it('ages out silent instances as reports come in, with nobody reading', () => {
    let now = 0;
    const aggregator = new ReportAggregator({ ttl: 30_000, now: () => now });
    aggregator.ingest(held('checkout', 'quiet', [edge('payments', 'charge', 4, [5])]));
    const bytes = aggregator.bytes;
    now = 30_001;
    aggregator.ingest(held('checkout', 'busy', [edge('payments', 'charge', 4, [5])]));
    expect(aggregator.bytes, 'only the busy one is held').to.equal(bytes);
  });
});

describe('the control plane ages out instances that stop reporting (fake clock)', () => {
  it('drops a silent instance from /v1/stats and /metrics after reportTtl', async () => {
    const clock = FakeTimers.install({ toFake: ['Date'], now: 1_700_000_000_000 });
    const control = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9'), { reportTtl: 5_000, logLevel: 'silent' });
    try {
      const post = (body: StatsReport) => fetch(`${control.url}/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await post(report('checkout', 'c-1', [edge('payments', 'charge', 7, [3])]))).status).to.equal(204);
      expect((await post(report('checkout', 'c-2', [edge('payments', 'charge', 1, [3])]))).status).to.equal(204);
      const stats = async (): Promise<StatsView> => (await (await fetch(`${control.url}/v1/stats?window=1m`)).json()) as StatsView;
      expect((await stats()).edges[0]).to.include({ requests: 8, instances: 2 });
      clock.tick(4_000);
      expect((await post(report('checkout', 'c-2', [edge('payments', 'charge', 2, [3])]))).status).to.equal(204);
      clock.tick(1_500);
      const later = await stats();
      expect(later.instances).to.equal(1);
      expect(later.edges[0]).to.include({ requests: 2, instances: 1 });
      expect(await (await fetch(`${control.url}/metrics`)).text()).to.match(/^meshfetch_mesh_reporting_instances 1$/m);
    } finally {
      await control.close();
      clock.uninstall();
    }
  });

  it('refuses a report that is not one with 400 naming the field, and keeps nothing of it', async () => {
    const control = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9'), { logLevel: 'silent' });
    try {
      const bad = { ...report('checkout', 'c-1', [edge('payments', 'charge', 1, [])]) };
      bad.edges[0]![11] = -1;
      const res = await fetch(`${control.url}/v1/reports`, { method: 'POST', body: JSON.stringify(bad) });
      expect(res.status).to.equal(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).to.equal('edges[0][11] (retries): expected a whole number >= 0');
      const huge = await fetch(`${control.url}/v1/reports`, { method: 'POST', body: 'x'.repeat(600 * 1024) });
      expect(huge.status).to.equal(413);
      // Streamed, with no length declared: refused once the bytes pass the bound.
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 12; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
          controller.close();
        },
      });
      const streamed = await fetch(`${control.url}/v1/reports`, { method: 'POST', body: chunks, duplex: 'half' } as RequestInit);
      expect(streamed.status).to.equal(413);
      expect(((await streamed.json()) as { error: { message: string } }).error.message).to.equal('request body: larger than 524288 bytes');
      expect(((await (await fetch(`${control.url}/v1/stats`)).json()) as StatsView).instances).to.equal(0);
    } finally {
      await control.close();
    }
  });
});
