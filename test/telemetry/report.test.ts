import { expect } from 'chai';
import { parseStatsReport } from '../../lib/control-plane/report-parse.ts';
import { describe as describeTally } from '../../lib/telemetry/figures.ts';
import { MAX_REPORT_BYTES, MAX_REPORT_EDGES, REPORT_VERSION, reportOf } from '../../lib/telemetry/report.ts';
import type { MeshStatsSnapshot, ServiceStats } from '../../lib/telemetry/stats.ts';
import { newSketch, newTally } from '../../lib/telemetry/tally.ts';

describe('reportOf', () => {
  it('sends the busiest edges that fit 512 edges and 512 KiB, and the control plane takes them', () => {
    // Latencies over 1,000 bins of the sketch, two bytes of varint each: 640 such routes are far more than 512 KiB.
    const tally = newTally();
    tally.latency = newSketch();
    for (let bin = 0; bin < 1_000; bin++) for (let n = 0; n < 130; n++) tally.latency.accept(0.01 * 1.0202 ** bin);
    tally.requests = tally.successes = tally.attempts = tally.attemptSuccesses = tally.latency.count;
    const figures = describeTally(tally, 60_000, 'closed');
    const services: Record<string, ServiceStats> = {};
    let requests = 1;
    for (let s = 0; s < 5; s++) {
      const routes = Object.fromEntries(Array.from({ length: 128 }, (_, r) => [`route-${r}`, { ...figures, requests: requests++ }]));
      services[`svc-${s}`] = { ...figures, routes };
    }
    const snapshot: MeshStatsSnapshot = { caller: 'checkout', window: 60_000, at: 0, services };

    const report = reportOf(snapshot, 'c-1');
    const json = JSON.stringify(report);
    expect(report.v).to.equal(REPORT_VERSION);
    expect(Buffer.byteLength(json)).to.be.at.most(MAX_REPORT_BYTES);
    expect(report.edges.length).to.be.within(MAX_REPORT_BYTES / 4_000, MAX_REPORT_EDGES - 1);
    // The busiest: requests 640 down to what fitted.
    expect(report.edges.map((e) => e[4])).to.deep.equal(Array.from({ length: report.edges.length }, (_, i) => 640 - i));
    expect(parseStatsReport(json).to).to.have.length(report.edges.length);
  });
});
