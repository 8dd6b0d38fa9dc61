/**
 * Client CPU / latency / throughput benchmark: meshfetch against plain clients.
 *
 *   node bench/run.ts [--quick] [--concurrency 1,32] [--only name,...]
 *                     [--requests N] [--rounds R] [--warmup N] [--no-rotate] [--no-amplification] [--no-control-plane] [--no-telemetry]
 *                     [--no-resilience] [--no-peers] [--json FILE]
 *
 * After the CPU tables it runs the pipeline-only benches (bench/pipeline.ts, bench/routing.ts) and the TLS bench (bench/tls.ts: mTLS against
 * plain https, kept-alive and full handshakes) unless --only is given, the retry-amplification bench
 * (bench/amplification.ts) unless --no-amplification or --only is given, then the control plane bench
 * (bench/control-plane.ts: propagation to 1,000 watchers, memory at 1,000 and 10,000 idle watchers)
 * and the replicas bench (bench/control-plane-replicas.ts: 10,000 watchers over three replicas on a
 * real etcd) and the reports bench (bench/reports.ts: aggregating reports from 1,000 instances)
 * unless --no-control-plane or --only is given, then the telemetry cost bench
 * (bench/telemetry.ts) in a child process, since it registers the OpenTelemetry SDK globally (skipped
 * with --only or --no-telemetry), then the breaker, limits and balancer benches (bench/resilience.ts,
 * each in a child process of its own) unless --no-resilience or --only is given, then the peer bench
 * (bench/peers.ts, in a child process: meshfetch with every layer and the OTel SDK against got/undici
 * + opossum + p-retry + OTel by hand and against undici through a local haproxy sidecar) unless
 * --no-peers or --only is given.
 *
 * Every flag has an environment variable (flags win): BENCH_QUICK=1,
 * BENCH_CONCURRENCY, BENCH_ONLY, BENCH_REQUESTS, BENCH_ROUNDS, BENCH_WARMUP,
 * BENCH_JSON. BENCH_PIN_UPSTREAM=<cpu> pins the upstream child with taskset
 * (Linux; pin the client yourself: `taskset -c 0 ...`; on 2 cores it did not
 * reduce variance measurably, so it is off by default). --only matches names case-insensitively (exact, else substring);
 * the baseline ("undici request") is always run so ratios can be computed.
 * Progress goes to stderr, the tables to stdout.
 */
import './fetch-first.ts'; // must stay the first import: see the file
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { baselineCandidates } from './baselines.ts';
import {
  BASELINE_NAME,
  formatTable,
  getGc,
  measureHarnessOverhead,
  runLevel,
  type Candidate,
  type LevelResult,
} from './harness.ts';
import { formatAmplification, runAmplification } from './amplification.ts';
import { runPipelineBench } from './pipeline.ts';
import { runRoutingBench } from './routing.ts';
import { runControlPlaneBench } from './control-plane.ts';
import { runReportsBench } from './reports.ts';
import { runResilienceBench } from './resilience.ts';
import { runReplicaBench } from './control-plane-replicas.ts';
import { runTlsBench } from './tls.ts';
import { meshfetchCandidates, summarizeCriteria } from './meshfetch.ts';
import { startUpstream, type Upstream } from './server.ts';

interface Config {
  concurrency: number[];
  only: string[] | null;
  /** measured requests per candidate per round, by concurrency level (a flag sets all levels) */
  requests: (concurrency: number) => number;
  rounds: number;
  warmup: (concurrency: number) => number;
  rotate: boolean;
  json: string | null;
  quick: boolean;
  amplification: boolean;
  controlPlane: boolean;
  telemetry: boolean;
  resilience: boolean;
  peers: boolean;
}

/**
 * Defaults are sized for 2 cores: full mode ~1.5 min with the 4 baselines
 * (leaving room under 3 min for meshfetch candidates), quick mode ~15 s. c=1 is latency-bound (one round trip per request), so it
 * gets fewer requests than c=32.
 */
const DEFAULTS = {
  full: { requests: { 1: 5000, 32: 15000 } as Record<number, number>, rounds: 8, warmup: 3000 },
  quick: { requests: { 1: 1500, 32: 4000 } as Record<number, number>, rounds: 3, warmup: 1000 },
};

const USAGE = `usage: node bench/run.ts [--quick] [--concurrency 1,32] [--only name,...]
                          [--requests N] [--rounds R] [--warmup N] [--no-rotate] [--no-amplification] [--no-control-plane] [--no-telemetry]
                          [--no-resilience] [--no-peers] [--json FILE]`;

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: expected a positive integer, got "${raw}"`);
  return n;
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      concurrency: { type: 'string', short: 'c' },
      only: { type: 'string' },
      requests: { type: 'string', short: 'n' },
      rounds: { type: 'string', short: 'r' },
      warmup: { type: 'string' },
      'no-rotate': { type: 'boolean' },
      'no-amplification': { type: 'boolean' },
      'no-control-plane': { type: 'boolean' },
      'no-telemetry': { type: 'boolean' },
      'no-resilience': { type: 'boolean' },
      'no-peers': { type: 'boolean' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? ['1', 'true', 'yes'].includes((env.BENCH_QUICK ?? '').toLowerCase());
  const d = quick ? DEFAULTS.quick : DEFAULTS.full;

  const concRaw = values.concurrency ?? env.BENCH_CONCURRENCY;
  const concurrency = concRaw ? list(concRaw).map((c) => positiveInt('--concurrency', c)) : [1, 32];

  const onlyRaw = values.only ?? env.BENCH_ONLY;
  const reqRaw = values.requests ?? env.BENCH_REQUESTS;
  const fixedRequests = reqRaw ? positiveInt('--requests', reqRaw) : null;
  const roundsRaw = values.rounds ?? env.BENCH_ROUNDS;
  const warmRaw = values.warmup ?? env.BENCH_WARMUP;
  const fixedWarmup = warmRaw !== undefined ? Number(warmRaw) : null;
  if (fixedWarmup !== null && !(Number.isInteger(fixedWarmup) && fixedWarmup >= 0)) {
    throw new Error(`--warmup: expected a non-negative integer, got "${warmRaw}"`);
  }

  return {
    concurrency,
    only: onlyRaw ? list(onlyRaw).map((s) => s.toLowerCase()) : null,
    requests: (c) => fixedRequests ?? d.requests[c] ?? (c <= 1 ? d.requests[1]! : d.requests[32]!),
    rounds: roundsRaw ? positiveInt('--rounds', roundsRaw) : d.rounds,
    warmup: (c) => fixedWarmup ?? Math.max(d.warmup, c * 20),
    rotate: !values['no-rotate'],
    json: values.json ?? env.BENCH_JSON ?? null,
    quick,
    amplification: !values['no-amplification'] && !onlyRaw,
    controlPlane: !values['no-control-plane'] && !onlyRaw,
    telemetry: !values['no-telemetry'] && !onlyRaw,
    resilience: !values['no-resilience'] && !onlyRaw,
    peers: !values['no-peers'] && !onlyRaw,
  };
}

function select(all: Candidate[], only: string[] | null): Candidate[] {
  const names = new Set<string>();
  for (const c of all) {
    if (names.has(c.name)) throw new Error(`two candidates are named "${c.name}"`);
    names.add(c.name);
  }
  if (!only) return all;
  const picked = new Set<Candidate>();
  for (const want of only) {
    const exact = all.filter((c) => c.name.toLowerCase() === want);
    const matches = exact.length ? exact : all.filter((c) => c.name.toLowerCase().includes(want));
    if (!matches.length) {
      throw new Error(`--only: no candidate matches "${want}" (have: ${all.map((c) => c.name).join(', ')})`);
    }
    for (const m of matches) picked.add(m);
  }
  const baseline = all.find((c) => c.name === BASELINE_NAME);
  if (baseline) picked.add(baseline);
  return all.filter((c) => picked.has(c)); // keep declaration order
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2), process.env);
  const candidates = select([...baselineCandidates, ...meshfetchCandidates], cfg.only);
  const log = (line: string) => process.stderr.write(line + '\n');

  const gc = getGc();
  const overhead = await measureHarnessOverhead(32, 20_000);
  log(
    `meshfetch bench · node ${process.version} · ${availableParallelism()} cpus · ` +
      `${cfg.quick ? 'quick' : 'full'} mode · gc between runs: ${gc ? 'yes' : 'NO'} · ` +
      `candidates: ${candidates.map((c) => c.name).join(', ')}`,
  );

  let upstream: Upstream | undefined;
  const levels: LevelResult[] = [];
  const t0 = performance.now();
  try {
    upstream = await startUpstream(process.env.BENCH_PIN_UPSTREAM ? { pinCpu: Number(process.env.BENCH_PIN_UPSTREAM) } : {});
    const up = upstream;
    log(`upstream ${up.origin} (child process)`);
    for (const concurrency of cfg.concurrency) {
      const level = await runLevel(candidates, up.origin, {
        concurrency,
        requests: cfg.requests(concurrency),
        rounds: cfg.rounds,
        warmup: cfg.warmup(concurrency),
        roundWarmup: Math.max(200, concurrency * 10),
        rotate: cfg.rotate,
        upstreamStats: () => up.counts(),
        log,
      });
      levels.push(level);
      process.stdout.write('\n' + formatTable(level) + '\n' + summarizeCriteria(level) + '\n');
    }
    if (!cfg.only) {
      log('pipeline only: in-memory transport');
      process.stdout.write('\n' + (await runPipelineBench(cfg.quick ? 3 : 7, cfg.quick ? 20_000 : 50_000)) + '\n');
      log('routing: 50 routes matching by headers and a split vs one route');
      process.stdout.write('\n' + (await runRoutingBench(cfg.quick ? 3 : 7, cfg.quick ? 20_000 : 50_000)) + '\n');
      log('TLS: mTLS against plain https, kept-alive and full handshakes (https upstream in a child process)');
      process.stdout.write('\n' + (await runTlsBench(cfg.quick, log)) + '\n');
    }
    if (cfg.amplification) {
      const options = { ratePerSecond: 200, seconds: cfg.quick ? 3 : 10 };
      log(`retry amplification: ${options.ratePerSecond} calls/s for ${options.seconds} s per candidate`);
      const amplification = await runAmplification(up, options);
      process.stdout.write('\n' + formatAmplification(amplification, options) + '\n');
    }
    if (cfg.controlPlane) {
      const options = { rounds: cfg.quick ? 3 : 10, watchers: 1_000, idle: cfg.quick ? 2_000 : 10_000 };
      log(`control plane: propagation to ${options.watchers} watchers, memory at ${options.idle} idle watchers`);
      process.stdout.write('\n' + (await runControlPlaneBench(options, log)) + '\n');
      const replicas = { rounds: cfg.quick ? 3 : 10, watchers: cfg.quick ? 3_000 : 10_000, replicas: 3 };
      log(`control plane replicas on etcd: propagation to ${replicas.watchers} watchers over ${replicas.replicas} replicas`);
      process.stdout.write('\n' + (await runReplicaBench(replicas, log)) + '\n');
      log('control plane: aggregating reports from 1,000 instances × 20 edges every 10 s');
      process.stdout.write('\n' + (await runReportsBench({ quick: cfg.quick }, log)) + '\n');
    }
    if (cfg.resilience) {
      log('circuit breaker, limits and load balancing (bench/resilience.ts)');
      process.stdout.write('\n' + (await runResilienceBench(cfg.quick)) + '\n');
    }
  } finally {
    await upstream?.close();
  }
  if (cfg.telemetry) {
    log('telemetry cost: in a child process (it registers the OpenTelemetry SDK)');
    const script = fileURLToPath(new URL('./telemetry.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [script, ...(cfg.quick ? ['--quick'] : [])]);
    process.stdout.write('\n' + stdout);
  }
  if (cfg.peers) {
    log('peers: meshfetch next to the hand-assembled stacks and a haproxy sidecar, in a child process (it registers the OpenTelemetry SDK)');
    const script = fileURLToPath(new URL('./peers.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [script, ...(cfg.quick ? ['--quick'] : [])], { maxBuffer: 16 * 1024 * 1024 });
    process.stdout.write('\n' + stdout);
  }

  process.stdout.write(
    `\nCPU = this process's user+system time (process.cpuUsage) / requests; the upstream runs in a child process.\n` +
      `Ratios are candidate / "${BASELINE_NAME}" (req/s: higher is better; the rest: lower is better). ` +
      `Harness loop overhead ≈ ${overhead.toFixed(2)} µs CPU/req (no-op call). ` +
      `Total ${((performance.now() - t0) / 1000).toFixed(0)} s.\n`,
  );

  if (cfg.json) {
    const doc = {
      node: process.version,
      cpus: availableParallelism(),
      quick: cfg.quick,
      harnessOverheadUsPerReq: overhead,
      baseline: BASELINE_NAME,
      levels,
    };
    await writeFile(cfg.json, JSON.stringify(doc, null, 2) + '\n');
    log(`results written to ${cfg.json}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  if (err instanceof Error && err.cause) process.stderr.write(`cause: ${String((err.cause as Error).stack ?? err.cause)}\n`);
  process.exitCode = 1;
});
