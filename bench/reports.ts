/**
 * Visibility bench: the control plane taking in reports from 1,000 instances × 20 edges every 10 s
 * (100 reports/s), each instance on its own kept-alive connection, against a baseline server that
 * only reads and parses the same bodies from as many connections, both in one child process,
 * interleaved period by period; the child's CPU share of one core and RSS are read over IPC. Then
 * the cost of reading the merged view (GET /v1/stats, GET /metrics) with all of that held; in this
 * process, the control plane's own work per report without HTTP (parse, check, hold) against
 * JSON.parse, and the client's cost per report (snapshot, report, JSON).
 *
 *   node bench/reports.ts [--quick]      (also run by `npm run bench`)
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Agent, Client, request } from 'undici';
import type { Dispatcher } from 'undici';
import { MeshEvents } from '../lib/events.ts';
import { ReportAggregator } from '../lib/control-plane/report-aggregator.ts';
import { parseStatsReport } from '../lib/control-plane/report-parse.ts';
import { reportOf } from '../lib/telemetry/report.ts';
import type { StatsReport } from '../lib/telemetry/report.ts';
import { StatsCollector } from '../lib/telemetry/stats.ts';

/** What the child reports: its CPU time (ms), RSS, process.memoryUsage() and V8 heap spaces ("used/size" MB). */
interface Usage {
  cpu: number;
  rss: number;
  memory: NodeJS.MemoryUsage;
  spaces: Record<string, string>;
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
/** Each period's share, in the order run. */
const spread = (shares: readonly number[]): string => shares.map((share) => `${(share * 100).toFixed(2)} %`).join(', ');

const INSTANCES = 1_000;
const EDGES = 20;
const PERIOD_MS = 10_000;

/** A mesh's figures after realistic traffic on `EDGES` routes, through the real StatsCollector. */
function trafficSnapshot(events: MeshEvents, collector: StatsCollector, calls: number): ReturnType<StatsCollector['snapshot']> {
  for (let i = 0; i < calls; i++) {
    const route = `route-${i % EDGES}`;
    const service = `svc-${i % 5}`;
    events.emit('attempt', { service, route, attempt: 1, outcome: i % 50 === 0 ? 'failure' : 'success', duration: 2 + (i % 97) / 3 } as never);
    events.emit('call', { service, route, outcome: 'success', duration: 2 + (i % 97) / 3, attempts: 1 } as never);
  }
  return collector.snapshot();
}

function reportBodies(): string[] {
  const events = new MeshEvents();
  const collector = new StatsCollector(events, { caller: 'caller', inPolicy: () => true });
  const snapshot = trafficSnapshot(events, collector, 4_000);
  collector.close();
  return Array.from({ length: INSTANCES }, (_, i) => JSON.stringify({ ...reportOf(snapshot, `instance-${i}`), service: `caller-${i % 10}` } satisfies StatsReport));
}

async function post(client: Dispatcher, origin: string, path: string, body: string): Promise<void> {
  const res = await request(`${origin}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client });
  await res.body.dump();
  if (res.statusCode !== 204) throw new Error(`${origin}${path}: HTTP ${res.statusCode}`);
}

/** One kept-alive connection per instance, as each mesh has its own (the control plane keeps idle ones 30 s, longer than the 10 s interval). */
const instanceClients = (origin: string): Client[] => Array.from({ length: INSTANCES }, () => new Client(origin, { pipelining: 1 }));

/** Sends every body once, each from its own instance's connection, spread evenly over `ms` (one report every ms / bodies.length). */
async function sendSpread(clients: readonly Client[], origin: string, path: string, bodies: readonly string[], ms: number): Promise<void> {
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < bodies.length; i++) {
    const due = start + (i * ms) / bodies.length;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(post(clients[i]!, origin, path, bodies[i]!));
  }
  await Promise.all(pending);
  const rest = start + ms - performance.now();
  if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
}

export async function runReportsBench(options: { quick: boolean }, log: (line: string) => void = () => {}): Promise<string> {
  const bodies = reportBodies();
  const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / bodies.length;
  const periods = options.quick ? 4 : 6;
  const period = options.quick ? PERIOD_MS / 2 : PERIOD_MS;
  const sent = options.quick ? bodies.slice(0, bodies.length / 2) : bodies;
  const child = fork(fileURLToPath(new URL('./reports-server.ts', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ ready }] = (await once(child, 'message')) as [{ ready: { controlPlane: string; baseline: string } }];
  const usage = async (): Promise<Usage> => {
    child.send({ usage: true });
    return ((await once(child, 'message')) as [Usage])[0];
  };
  const agent = new Agent({ connections: 1 });
  const targets = [
    { name: 'baseline (read + JSON.parse)', origin: ready.baseline, path: '/', clients: instanceClients(ready.baseline), cpu: [] as number[] },
    { name: 'meshfetch control plane', origin: ready.controlPlane, path: '/v1/reports', clients: instanceClients(ready.controlPlane), cpu: [] as number[] },
  ];
  const [baseline, controlPlane] = targets as [(typeof targets)[0], (typeof targets)[0]];
  const atStart = await usage();
  try {
    // Warm-up: every instance reports once to the control plane, so it holds 1,000 × 20 edges from
    // the start, and then to the baseline, so that both have their 1,000 connections open.
    await sendSpread(controlPlane.clients, controlPlane.origin, controlPlane.path, bodies, 2_000);
    const warm = await usage();
    await sendSpread(baseline.clients, baseline.origin, baseline.path, bodies, 2_000);
    for (let round = 0; round < periods; round++) {
      for (const t of round % 2 ? [...targets].reverse() : targets) {
        log(`reports: ${t.name}, ${sent.length} reports over ${period / 1_000} s`);
        const before = await usage();
        const wall = performance.now();
        await sendSpread(t.clients, t.origin, t.path, sent, period);
        t.cpu.push(((await usage()).cpu - before.cpu) / (performance.now() - wall));
      }
    }
    const { rss, memory, spaces } = await usage();
    const timed = async (path: string): Promise<number> => {
      const start = performance.now();
      const res = await request(`${ready.controlPlane}${path}`, { dispatcher: agent });
      await res.body.dump();
      return performance.now() - start;
    };
    const reads = { stats: [] as number[], metrics: [] as number[] };
    for (let i = 0; i < 3; i++) {
      reads.stats.push(await timed('/v1/stats'));
      reads.metrics.push(await timed('/metrics'));
    }
    const client = clientCost();
    const intake = intakeCost(bodies);
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const [base, cp] = targets.map((t) => median(t.cpu)) as [number, number];
    return [
      `Reports: ${INSTANCES} instances × ${EDGES} edges every ${PERIOD_MS / 1_000} s = ${INSTANCES / (PERIOD_MS / 1_000)} reports/s${options.quick ? ' (quick: half the instances over half the period, the same rate)' : ''}; report body ${(bytes / 1_024).toFixed(1)} KiB`,
      `| server | CPU share of one core (median of ${periods}) | periods | ratio |`,
      `|---|---|---|---|`,
      `| ${targets[0]!.name} | ${(base * 100).toFixed(2)} % | ${spread(targets[0]!.cpu)} | 1.00 |`,
      `| ${targets[1]!.name} | ${(cp * 100).toFixed(2)} % | ${spread(targets[1]!.cpu)} | ${(cp / base).toFixed(2)} |`,
      `control plane process RSS holding ${INSTANCES} × ${EDGES} edges and ${INSTANCES} connections: ${mb(warm.rss)} MB after the warm-up; at the end ${mb(rss)} MB, with the baseline's ${INSTANCES} connections too (JS heap ${mb(memory.heapUsed)} MB in use of ${mb(memory.heapTotal)} MB, of which new space ${spaces.new_space}; external ${mb(memory.external)} MB, array buffers ${mb(memory.arrayBuffers)} MB); ${mb(atStart.rss)} MB at start, before any report`,
      `GET /v1/stats merging ${INSTANCES * EDGES} edges: ${median(reads.stats).toFixed(0)} ms; GET /metrics: ${median(reads.metrics).toFixed(0)} ms (median of 3)`,
      `taking a report in, in this process with the code hot (best of 5 passes over the ${INSTANCES} bodies): JSON.parse ${intake.parseUs.toFixed(1)} µs; parse, check and hold ${intake.ingestUs.toFixed(1)} µs`,
      `client, per report of ${EDGES} routes: snapshot ${client.snapshotUs.toFixed(0)} µs + report and JSON ${client.reportUs.toFixed(0)} µs, off the call path (one timer per mesh)`,
    ].join('\n');
  } finally {
    await Promise.all([agent, ...baseline.clients, ...controlPlane.clients].map((c) => c.close()));
    child.send({ close: true });
    await once(child, 'exit');
  }
}

/** The control plane's own work per report without HTTP, against JSON.parse of the same bodies. */
function intakeCost(bodies: readonly string[]): { parseUs: number; ingestUs: number } {
  const aggregator = new ReportAggregator();
  const best = (take: (body: string) => void): number => {
    let fastest = Infinity;
    for (let pass = 0; pass < 5; pass++) {
      const start = performance.now();
      for (const body of bodies) take(body);
      fastest = Math.min(fastest, ((performance.now() - start) * 1_000) / bodies.length);
    }
    return fastest;
  };
  return { parseUs: best((body) => JSON.parse(body)), ingestUs: best((body) => aggregator.ingest(parseStatsReport(body))) };
}

/** What a mesh pays per report: mesh.stats() (quantiles, sketch encoding) and reportOf + JSON.stringify. */
function clientCost(): { snapshotUs: number; reportUs: number } {
  const events = new MeshEvents();
  const collector = new StatsCollector(events, { caller: 'caller', inPolicy: () => true });
  trafficSnapshot(events, collector, 4_000);
  const N = 200;
  let start = performance.now();
  for (let i = 0; i < N; i++) collector.snapshot();
  const snapshotUs = ((performance.now() - start) * 1_000) / N;
  const snapshot = collector.snapshot();
  start = performance.now();
  for (let i = 0; i < N; i++) JSON.stringify(reportOf(snapshot, 'instance'));
  const reportUs = ((performance.now() - start) * 1_000) / N;
  collector.close();
  return { snapshotUs, reportUs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${await runReportsBench({ quick: process.argv.includes('--quick') }, (line) => process.stderr.write(`${line}\n`))}\n`);
}
