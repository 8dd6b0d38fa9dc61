/**
 * Visibility bench: the control plane taking in reports from 1,000 instances × 20 edges every 10 s
 * (100 reports/s), each instance on its own kept-alive connection, as meshes send them (a stream of
 * reports per instance, the real ReportStream), against two baselines in the same child process: a
 * bare server that JSON.parse's each line of the same streams (the floor of this way of sending),
 * and one that reads and JSON.parse's a report per request and answers each (the floor of the way
 * reports were sent before). Interleaved period by period; the child's CPU share of one core and RSS
 * are read over IPC. Then the cost of reading the merged view (GET /v1/stats, GET /metrics) with all
 * of that held; in this process, the control plane's own work per report without HTTP (parse,
 * check, hold) against JSON.parse, and the client's cost per report (snapshot, report, JSON).
 *
 *   node bench/reports.ts [--quick]      (also run by `npm run bench`)
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { Agent as HttpAgent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Agent, Client, request } from 'undici';
import type { Dispatcher } from 'undici';
import { ReportStream } from '../lib/control-plane-client/report-stream.ts';
import { MeshEvents } from '../lib/events.ts';
import { createLogger } from '../lib/log.ts';
import { ReportAggregator } from '../lib/control-plane/report-aggregator.ts';
import { parseStatsReport } from '../lib/control-plane/report-parse.ts';
import { REPORT_STREAM_MAX_AGE_MS, reportOf } from '../lib/telemetry/report.ts';
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
/** The reports a mesh's stream carries at the default interval (30). */
const REPORTS_PER_STREAM = REPORT_STREAM_MAX_AGE_MS / PERIOD_MS;

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

async function post(client: Dispatcher, url: string, body: string): Promise<void> {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client });
  await res.body.dump();
  if (res.statusCode !== 204) throw new Error(`${url}: HTTP ${res.statusCode}`);
}

/** A way of sending instance `i`'s report: a request of its own, or a line of its stream. */
interface Sender {
  send(i: number): Promise<void> | void;
  close(): Promise<void> | void;
}

/** A report per request, each instance on its own kept-alive connection (the control plane keeps idle ones 30 s, past the interval). */
function perRequest(url: string, bodies: readonly string[]): Sender {
  const clients = bodies.map(() => new Client(new URL(url).origin, { pipelining: 1 }));
  return { send: (i) => post(clients[i]!, url, bodies[i]!), close: () => Promise.all(clients.map((c) => c.close())).then(() => undefined) };
}

/**
 * Each instance's reports as lines of its stream, with the real ReportStream and an agent of its
 * own, as each mesh has. An instance reports to a server every `gap` ms (the period times the
 * servers taking turns), and a stream carries as many reports as the default 10 s interval puts
 * on one (30), so each server answers as often per report as it would in life.
 */
function streamed(url: string, bodies: readonly string[], gap: number): Sender {
  const logger = createLogger('silent');
  const maxAge = REPORTS_PER_STREAM * gap;
  const agents = bodies.map(() => new HttpAgent({ keepAlive: true }));
  const streams = agents.map((agent) => new ReportStream({ url: new URL(url), agent, interval: gap, logger, maxAge }));
  const lines = bodies.map((body) => `${body}\n`);
  return {
    send: (i) => streams[i]!.send(lines[i]!),
    close() {
      for (const stream of streams) stream.close();
      for (const agent of agents) agent.destroy();
    },
  };
}

/** Sends every instance's report once, spread evenly over `ms` (one every ms / count). */
async function sendSpread(sender: Sender, count: number, ms: number): Promise<void> {
  const start = performance.now();
  const pending: (Promise<void> | void)[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * ms) / count;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(sender.send(i));
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
  const sent = options.quick ? bodies.length / 2 : bodies.length;
  const child = fork(fileURLToPath(new URL('./reports-server.ts', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ ready }] = (await once(child, 'message')) as [{ ready: { controlPlane: string; baseline: string; streamBaseline: string } }];
  const usage = async (): Promise<Usage> => {
    child.send({ usage: true });
    return ((await once(child, 'message')) as [Usage])[0];
  };
  const agent = new Agent({ connections: 1 });
  const gap = 3 * period;
  const targets = [
    { name: 'baseline: a stream per instance, JSON.parse per line', sender: streamed(ready.streamBaseline, bodies, gap), streams: true, cpu: [] as number[] },
    { name: 'meshfetch control plane (streams, as meshes send)', sender: streamed(`${ready.controlPlane}/v1/reports`, bodies, gap), streams: true, cpu: [] as number[] },
    { name: 'baseline: a request per report, read + JSON.parse + 204', sender: perRequest(`${ready.baseline}/`, bodies), streams: false, cpu: [] as number[] },
  ];
  const [, controlPlane] = targets as [(typeof targets)[0], (typeof targets)[0]];
  /**
   * Every instance reports to `t`; to a stream server instance i reports 1 + i % 30 times, so that from then on a
   * thirtieth of the streams end, are answered and open anew in every period, as meshes'
   * streams, begun at different times, do in life. (Begun together, they would all end in one
   * period, which the median leaves out, or none in a run too short.)
   */
  const warmUp = async (t: (typeof targets)[0]): Promise<void> => {
    for (let report = 0; report < (t.streams ? REPORTS_PER_STREAM : 1); report++) {
      const staggered: Sender = { send: (i) => (i % REPORTS_PER_STREAM >= report ? t.sender.send(i) : undefined), close() {} };
      // At most 500 reports/s, as in the first pass: a faster burst grows V8's young generation, and the RSS read after it.
      // Only the instances the periods use: with --quick, the rest would sit silent until cut as idle.
      await sendSpread(staggered, sent, (((2_000 * sent) / bodies.length) * (REPORTS_PER_STREAM - report)) / REPORTS_PER_STREAM);
    }
  };
  const atStart = await usage();
  try {
    // Warm-up: every instance reports to the control plane, so it holds 1,000 × 20 edges from the
    // start, and then to each baseline, so that all have their 1,000 connections open.
    await warmUp(controlPlane);
    const warm = await usage();
    for (const t of targets) if (t !== controlPlane) await warmUp(t);
    for (let round = 0; round < periods; round++) {
      for (const t of round % 2 ? [...targets].reverse() : targets) {
        log(`reports: ${t.name}, ${sent} reports over ${period / 1_000} s`);
        const before = await usage();
        const wall = performance.now();
        await sendSpread(t.sender, sent, period);
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
    const shares = targets.map((t) => median(t.cpu));
    return [
      `Reports: ${INSTANCES} instances × ${EDGES} edges every ${PERIOD_MS / 1_000} s = ${INSTANCES / (PERIOD_MS / 1_000)} reports/s${options.quick ? ' (quick: half the instances over half the period, the same rate)' : ''}; report body ${(bytes / 1_024).toFixed(1)} KiB`,
      `| server | CPU share of one core (median of ${periods}) | periods | ratio to the stream baseline |`,
      `|---|---|---|---|`,
      ...targets.map((t, i) => `| ${t.name} | ${(shares[i]! * 100).toFixed(2)} % | ${spread(t.cpu)} | ${(shares[i]! / shares[0]!).toFixed(2)} |`),
      `control plane process RSS holding ${sent} × ${EDGES} edges and ${sent} connections: ${mb(warm.rss)} MB after the warm-up; at the end ${mb(rss)} MB, with the baselines' ${2 * sent} connections too (JS heap ${mb(memory.heapUsed)} MB in use of ${mb(memory.heapTotal)} MB, of which new space ${spaces.new_space}; external ${mb(memory.external)} MB, array buffers ${mb(memory.arrayBuffers)} MB); ${mb(atStart.rss)} MB at start, before any report`,
      `GET /v1/stats merging ${sent * EDGES} edges: ${median(reads.stats).toFixed(0)} ms; GET /metrics: ${median(reads.metrics).toFixed(0)} ms (median of 3)`,
      `taking a report in, in this process with the code hot (best of 5 passes over the ${INSTANCES} bodies): JSON.parse ${intake.parseUs.toFixed(1)} µs; parse, check and hold ${intake.ingestUs.toFixed(1)} µs`,
      `client, per report of ${EDGES} routes: snapshot ${client.snapshotUs.toFixed(0)} µs + report and JSON ${client.reportUs.toFixed(0)} µs, off the call path (one timer per mesh)`,
    ].join('\n');
  } finally {
    await Promise.all([agent.close(), ...targets.map((t) => t.sender.close())]);
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
