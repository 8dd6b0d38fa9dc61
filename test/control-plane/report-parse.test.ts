import { expect } from 'chai';
import fc from 'fast-check';
import { COLUMNS, FIRST_COUNT, totalRequests } from '../../lib/control-plane/held-report.ts';
import { Refusal } from '../../lib/control-plane/http.ts';
import { MAX_VIEW_ROUTES, ReportAggregator } from '../../lib/control-plane/report-aggregator.ts';
import { parseStatsReport } from '../../lib/control-plane/report-parse.ts';
import { EdgeMerger } from '../../lib/control-plane/edge-merger.ts';
import { BinReader, MAX_BINS, MAX_BIN_KEY, encodeBins } from '../../lib/telemetry/report-bins.ts';
import { EDGE_COUNTS, REPORT_VERSION, edgeReport } from '../../lib/telemetry/report.ts';
import type { EdgeReport } from '../../lib/telemetry/report.ts';
import { addBins, newSketch, sketchBins } from '../../lib/telemetry/tally.ts';
import type { Sketch } from '../../lib/telemetry/tally.ts';

function sketchOf(latencies: readonly number[]): Sketch {
  const sketch = newSketch();
  for (const ms of latencies) sketch.accept(ms);
  return sketch;
}

function edge(route: string, latencies: readonly number[], to = 'payments'): EdgeReport {
  const n = latencies.length;
  return edgeReport({
    to, route, requests: n, successes: n, failures: 0, cancelled: 0, attempts: n + 1, attemptSuccesses: n, attemptFailures: 1, retries: 1, hedges: 0,
    breaker: 'closed', windowMs: 60_000, latency: n === 0 ? null : sketchBins(sketchOf(latencies)),
  });
}

const body = (edges: unknown[], extra: Record<string, unknown> = {}): string => JSON.stringify({ v: REPORT_VERSION, service: 'checkout', instance: 'c-1', edges, ...extra });

function refusal(text: string): string {
  try {
    parseStatsReport(text);
  } catch (err) {
    expect(err).to.be.instanceOf(Refusal);
    expect((err as Refusal).status).to.equal(400);
    return (err as Refusal).message;
  }
  expect.fail('the report was taken');
}

describe('stats report format 2', () => {
  it('holds a report as a few arrays: names, numbers by column, the bins as they came', () => {
    const held = parseStatsReport(body([edge('charge', [10, 10, 20]), edge('refund', [])]));
    expect(held).to.include({ service: 'checkout', instance: 'c-1' });
    expect(held.to).to.deep.equal(['payments', 'payments']);
    expect(held.route).to.deep.equal(['charge', 'refund']);
    expect(held.figures).to.have.length(2 * COLUMNS);
    expect(Array.from(held.figures.subarray(FIRST_COUNT, FIRST_COUNT + EDGE_COUNTS.length))).to.deep.equal([3, 3, 0, 0, 4, 3, 1, 1, 0]);
    expect(totalRequests(held)).to.equal(3);
    const reader = new BinReader().reset(held.latency, 0, held.latency.length);
    expect(reader.next(), 'zero count').to.equal(0);
    const bins = sketchBins(sketchOf([10, 10, 20]));
    expect(reader.nextKey()).to.equal(bins.key);
    const counts: number[] = [];
    while (!reader.done) counts.push(reader.next());
    expect(counts).to.deep.equal(bins.counts);
  });

  it('sends bins without the empty ones at either end, keys under 1 ms and counts past 2^32 exactly', () => {
    const encoded = encodeBins({ zero: 3, key: -40, counts: [0, 0, 5e9, 0, 1, 0, 0] });
    const bytes = Buffer.from(encoded, 'base64');
    const reader = new BinReader().reset(bytes, 0, bytes.length);
    expect([reader.next(), reader.nextKey(), reader.next(), reader.next(), reader.next()]).to.deep.equal([3, -38, 5e9, 0, 1]);
    expect(reader.done).to.equal(true);
    expect(encodeBins({ zero: 2, key: 7, counts: [0, 0] }), 'only zeros: no bins').to.equal(encodeBins({ zero: 2, key: 0, counts: [] }));
  });

  it('refuses any other version with 400 naming v', () => {
    const good = edge('charge', [1]);
    expect(refusal(body([good], { v: undefined }))).to.equal('v: expected 2, the report format this control plane takes (got null)');
    expect(refusal(body([good], { v: 1 }))).to.equal('v: expected 2, the report format this control plane takes (got 1)');
    expect(refusal(body([good], { v: '2' }))).to.equal('v: expected 2, the report format this control plane takes (got "2")');
    // A report of format 1: counts by name, bins as numbers.
    const old = { service: 'checkout', instance: 'c-1', edges: [{ to: 'payments', route: 'charge', requests: 1, successes: 1, failures: 0, cancelled: 0, attempts: 1, attemptSuccesses: 1, attemptFailures: 0, retries: 0, hedges: 0, breaker: 'closed', latency: { zero: 0, key: 10, counts: [1] }, windowMs: 60_000 }] };
    expect(refusal(JSON.stringify(old))).to.match(/^v: expected 2/);
  });

  it('refuses a bad field with 400 naming it', () => {
    const good = edge('charge', [5, 6]);
    const bins = (text: string): EdgeReport => good.with(13, text) as EdgeReport;
    const cases: [unknown, string][] = [
      [{ to: 'payments' }, 'edges[0]: expected an array of 14: to, route, breaker, windowMs, requests, successes, failures, cancelled, attempts, attemptSuccesses, attemptFailures, retries, hedges, latency'],
      [good.slice(1), 'edges[0]: expected an array of 14: to, route, breaker, windowMs, requests, successes, failures, cancelled, attempts, attemptSuccesses, attemptFailures, retries, hedges, latency'],
      [good.with(0, 'pay ments'), 'edges[0][0] (to): expected a service name'],
      [good.with(1, ''), 'edges[0][1] (route): expected a route name of 1 to 128 characters'],
      [good.with(1, 'charge\u202e'), 'edges[0][1] (route): expected a route name of 1 to 128 characters'],
      [good.with(1, '\ud800'), 'edges[0][1] (route): expected a route name of 1 to 128 characters'],
      [good.with(2, 'ajar'), 'edges[0][2] (breaker): expected one of closed, half-open, open'],
      [good.with(3, 999), 'edges[0][3] (windowMs): expected whole milliseconds >= 1000'],
      [good.with(8, 1.5), 'edges[0][8] (attempts): expected a whole number >= 0'],
      [good.with(4, '3'), 'edges[0][4] (requests): expected a whole number >= 0'],
      [good.with(12, 2e12), 'edges[0][12] (hedges): expected a whole number >= 0'],
      [good.with(13, 5), 'edges[0][13] (latency): expected null or a base64 string of bins'],
      [bins('AA!A'), 'edges[0][13] (latency): expected null or a base64 string of bins'],
      [bins('AAA'), 'edges[0][13] (latency): expected null or a base64 string of bins'],
      [bins(''), 'edges[0][13] (latency): expected bins as varints (the zero count is not a varint of at most 1e12)'],
      [bins(Buffer.from([0, 20, 1, 0x81]).toString('base64')), 'edges[0][13] (latency): expected bins as varints (bin 1: a varint cut short)'],
      [bins(Buffer.from([0, 20, 0xff, 0xff, 0xff, 0xff, 0xff, 1]).toString('base64')), 'edges[0][13] (latency): expected bins as varints (bin 0: a varint longer than 5 bytes)'],
      [bins(encodeBins({ zero: 0, key: 6_000, counts: [1] })), 'edges[0][13] (latency): expected bins as varints (the first key is not a varint within ±5000)'],
      [bins(encodeBins({ zero: 0, key: 4_990, counts: Array(20).fill(1) })), 'edges[0][13] (latency): expected bins as varints (the last key is past 5000)'],
      [bins(encodeBins({ zero: 0, key: 0, counts: Array(1_025).fill(1) })), 'edges[0][13] (latency): expected bins as varints (more than 1024 bins)'],
    ];
    for (const [bad, message] of cases) {
      expect(refusal(body([bad])), message).to.equal(message);
      expect(refusal(body([good, bad])), message).to.equal(message.replace('edges[0]', 'edges[1]'));
    }
  });
});

describe('what one report may name', () => {
  it('refuses an edge named twice with 400 naming both: it would be counted twice, its instance once', () => {
    const charge = edge('charge', [5, 6]);
    expect(refusal(body([charge, edge('refund', [1]), edge('charge', [7])]))).to.equal('edges[2]: expected an edge not already in the report (payments charge is edges[0])');
    expect(() => parseStatsReport(body([charge, edge('charge', [7], 'orders')]))).not.to.throw(); // another destination
  });
});

describe('a view of many rows', () => {
  it(`makes at most MAX_VIEW_ROUTES (${MAX_VIEW_ROUTES}) caller, destination and route rows, the rest folded into one (other) row, every request still counted`, () => {
    const aggregator = new ReportAggregator();
    const perInstance = 512;
    const instances = Math.ceil((MAX_VIEW_ROUTES + 600) / perInstance);
    for (let i = 0; i < instances; i++) {
      const edges = Array.from({ length: perInstance }, (_, r) => edge(`route-${i}-${r}`, [], 'payments').with(4, 1 + (r % 3)));
      aggregator.ingest(parseStatsReport(body(edges, { instance: `c-${i}` })));
    }
    const view = aggregator.view({ window: 60_000 });
    expect(view.routes).to.have.length(MAX_VIEW_ROUTES + 1);
    const other = view.routes.find((r) => r.route === '(other)')!;
    expect(other).to.include({ from: '(other)', to: '(other)' });
    const sum = (rows: { requests: number }[]): number => rows.reduce((n, r) => n + r.requests, 0);
    expect(sum(view.routes)).to.equal(sum(view.edges));
    expect(sum(view.edges)).to.equal(sum(view.serviceRoutes));
    expect(view.edges.map((e) => `${e.from}->${e.to}`).sort()).to.deep.equal(['(other)->(other)', 'checkout->payments']);
    const sent = Array.from({ length: instances * perInstance }, (_, k) => 1 + ((k % perInstance) % 3)).reduce((a, b) => a + b, 0);
    expect(sum(view.edges), 'every request sent').to.equal(sent);
    expect(other.requests, 'the folded rows').to.equal(sent - sum(view.routes.filter((r) => r !== other)));
  });
});

describe('merging compact reports', () => {
  const latency = fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 100_000, noNaN: true }));
  const instance = fc.array(fc.array(latency, { maxLength: 40 }), { minLength: 1, maxLength: 3 });

  it('gives the quantiles of merging the sketches themselves, per route, edge and destination route', () => {
    fc.assert(
      fc.property(fc.array(instance, { minLength: 1, maxLength: 6 }), (instances) => {
        const aggregator = new ReportAggregator();
        const direct = new Map<string, Sketch>();
        const merged = (key: string): Sketch => direct.get(key) ?? direct.set(key, newSketch()).get(key)!;
        instances.forEach((routes, i) => {
          aggregator.ingest(parseStatsReport(JSON.stringify({ v: REPORT_VERSION, service: 'checkout', instance: `c-${i}`, edges: routes.map((values, r) => edge(`r${r}`, values)) })));
          routes.forEach((values, r) => {
            if (values.length === 0) return;
            for (const key of [`route r${r}`, 'edge', `service route r${r}`]) merged(key).merge(sketchOf(values));
          });
        });
        const view = aggregator.view({ window: 60_000 });
        const quantiles = (sketch: Sketch | undefined) => (sketch && sketch.count > 0 ? { p50: sketch.getValueAtQuantile(0.5), p95: sketch.getValueAtQuantile(0.95), p99: sketch.getValueAtQuantile(0.99) } : null);
        for (const route of view.routes) expect(route.latency, route.route).to.deep.equal(quantiles(direct.get(`route ${route.route}`)));
        for (const route of view.serviceRoutes) expect(route.latency, route.route).to.deep.equal(quantiles(direct.get(`service route ${route.route}`)));
        expect(view.edges).to.have.length(1);
        expect(view.edges[0]!.latency).to.deep.equal(quantiles(direct.get('edge')));
        expect(view.edges[0]!.requests).to.equal(instances.flat().reduce((n, values) => n + values.length, 0));
        expect(view.edges[0]!.instances).to.equal(instances.length);
      }),
      { numRuns: 200 },
    );
  });
});

describe('merging bins far apart', () => {
  const wire = (first: number, counts: readonly number[]): string => encodeBins({ zero: 0, key: first, counts: [...counts] });
  const heldEdge = (route: string, bins: string): EdgeReport => ['payments', route, 'closed', 60_000, 1, 1, 0, 0, 1, 1, 0, 0, 0, bins];

  it('holds no more keys than the merged sketch keeps: two one-bin reports 10,000 keys apart cost 1,024 keys, not 10,001', () => {
    const held = parseStatsReport(body([heldEdge('low', wire(-MAX_BIN_KEY, [1])), heldEdge('high', wire(MAX_BIN_KEY, [1]))]));
    const merger = new EdgeMerger();
    merger.addEdge(held, 0);
    merger.addEdge(held, 1);
    expect(merger.span).to.be.at.most(MAX_BINS + 32);
    const rolledUp = new EdgeMerger();
    const other = new EdgeMerger();
    other.addEdge(held, 0);
    rolledUp.addMerger(other);
    const high = new EdgeMerger();
    high.addEdge(held, 1);
    rolledUp.addMerger(high);
    expect(rolledUp.span).to.be.at.most(MAX_BINS + 32);
    // What a DDSketch holds after taking the same bins: the low one collapsed into the lowest it keeps.
    const direct = newSketch();
    addBins(direct, { zero: 0, key: -MAX_BIN_KEY, counts: [1] });
    addBins(direct, { zero: 0, key: MAX_BIN_KEY, counts: [1] });
    const quantiles = { p50: direct.getValueAtQuantile(0.5), p95: direct.getValueAtQuantile(0.95), p99: direct.getValueAtQuantile(0.99) };
    expect(merger.figures().latency).to.deep.equal(quantiles);
    expect(rolledUp.figures().latency).to.deep.equal(quantiles);
  });
});
