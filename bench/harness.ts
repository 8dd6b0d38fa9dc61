/**
 * A small, reusable benchmark runner for HTTP clients.
 *
 * A *candidate* is a named client set up against an origin; `call()` makes ONE
 * request and consumes the body fully (JSON parse). For one concurrency level
 * the runner:
 *
 *   1. sets every candidate up (its own pool/agent, sized for the level),
 *   2. warms each one up (JIT, connections) with `warmup` requests,
 *   3. runs R rounds; in each round every candidate in turn (round-robin, the
 *      starting candidate rotated each round so none is always first/last)
 *      gets a short re-warm, a GC, then a measured run of N requests,
 *   4. closes every candidate and reports the MEDIAN of each metric over the
 *      rounds, with ratios against the baseline candidate.
 *
 * Metrics of one measured run:
 *   - client CPU per request: process.cpuUsage() delta (user+system, all threads
 *     of this process: JS, GC helpers, libuv) / N. The upstream runs in another
 *     process (bench/server.ts), so its CPU is not in here.
 *   - latency p50/p99: performance.now() around each call(), stored into a
 *     preallocated Float64Array; sorted only after the run.
 *   - throughput: N / wall-clock of the run.
 *   - upstream requests per call (if the runner is given upstream stats): should
 *     be 1.00 for a plain client; >1 means retries/hedges reached the upstream.
 *     Also the upstream's own CPU per call, to show it is not the bottleneck
 *     and that it does the same work for every candidate.
 *
 * Keeping measurement overhead out: the timed region contains only the worker
 * loop (an index increment, two performance.now() calls and one typed-array
 * store per request); no allocation of samples, no sorting, no IPC, no
 * logging happens inside it. That loop is identical for every candidate, and
 * its cost is measured by `measureHarnessOverhead()` (a no-op candidate) and
 * printed under the table (typically well under 1 µs/req).
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The candidate every ratio is computed against. */
export const BASELINE_NAME = 'undici request';
/** The path every candidate requests (the upstream answers 64 bytes of JSON). */
export const BENCH_PATH = '/bench/item';

export interface CandidateInstance {
  /** One request; resolves after the body was fully read and JSON-parsed. Rejects on non-2xx. */
  call(): Promise<void>;
  /** Release every resource (pools, agents, sockets) so the process can exit. */
  close(): Promise<void>;
  /**
   * CPU µs used so far, cumulatively, by a process that works for this client (a sidecar proxy);
   * read outside the timed region, before and after each measured run.
   */
  sidecarCpuUs?(): number;
}

export interface Candidate {
  /** Shown in the table and matched by --only. */
  name: string;
  /**
   * Build the client for `origin` (e.g. "http://127.0.0.1:41234"), sized for
   * `concurrency` in-flight calls. Request `BENCH_PATH` (or any path not under /fail).
   */
  setup(origin: string, concurrency: number): Promise<CandidateInstance>;
}

export interface RunOptions {
  concurrency: number;
  /** measured requests per candidate per round */
  requests: number;
  /** number of rounds (the report takes the median over them) */
  rounds: number;
  /** requests per candidate before the first round */
  warmup: number;
  /** requests per candidate right before each measured run (not measured) */
  roundWarmup: number;
  /** rotate the starting candidate each round */
  rotate: boolean;
  /**
   * Cumulative upstream counters (requests served, upstream CPU µs); optional.
   * Read before and after each measured run, outside the timed region.
   */
  upstreamStats?: () => Promise<{ total: number; cpuUs: number }>;
  /** progress output (stderr by default) */
  log?: (line: string) => void;
}

export interface Sample {
  cpuUsPerReq: number;
  p50Us: number;
  p99Us: number;
  rps: number;
  /** upstream requests per logical call; NaN when not measured */
  upstreamPerCall: number;
  /** upstream (server process) CPU µs per logical call; NaN when not measured */
  upstreamCpuUsPerReq: number;
  /** a sidecar proxy's CPU µs per call (CandidateInstance.sidecarCpuUs); NaN without one */
  sidecarCpuUsPerReq: number;
}

export interface CandidateResult {
  name: string;
  /** one sample per round, in round order */
  samples: Sample[];
  /** per-metric median over the rounds */
  median: Sample;
}

export interface LevelResult {
  concurrency: number;
  requests: number;
  rounds: number;
  results: CandidateResult[];
}

// ---------------------------------------------------------------- GC

type GcFn = () => void;
let gcFn: GcFn | null | undefined;

/** global.gc if exposed (--expose-gc), else enable it at runtime; null if impossible. */
export function getGc(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === 'function') return (gcFn = g);
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as GcFn) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

function collect(): void {
  const gc = getGc();
  if (gc) {
    gc();
    gc(); // second pass picks up what the first one's finalizers released
  }
}

// ---------------------------------------------------------------- one run

/** Run `n` calls with `concurrency` workers; latencies (ms) land in `lat[0..n)`. */
async function drive(call: () => Promise<void>, n: number, concurrency: number, lat: Float64Array | null): Promise<void> {
  let next = 0;
  const worker = lat
    ? async (): Promise<void> => {
        for (let i = next++; i < n; i = next++) {
          const t0 = performance.now();
          await call();
          lat[i] = performance.now() - t0;
        }
      }
    : async (): Promise<void> => {
        for (let i = next++; i < n; i = next++) await call();
      };
  const workers: Promise<void>[] = new Array(Math.min(concurrency, n));
  for (let w = 0; w < workers.length; w++) workers[w] = worker();
  await Promise.all(workers);
}

type ClientSample = Omit<Sample, 'upstreamPerCall' | 'upstreamCpuUsPerReq' | 'sidecarCpuUsPerReq'>;

function percentile(sorted: Float64Array, p: number): number {
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[idx]!;
}

/** One measured run. `lat` must have room for `n` samples. */
async function measure(call: () => Promise<void>, n: number, concurrency: number, lat: Float64Array): Promise<ClientSample> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await drive(call, n, concurrency, lat);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // ---- end of timed region
  const sorted = lat.subarray(0, n).sort();
  return {
    cpuUsPerReq: (cpu.user + cpu.system) / n,
    p50Us: percentile(sorted, 0.5) * 1000,
    p99Us: percentile(sorted, 0.99) * 1000,
    rps: n / (wallMs / 1000),
  };
}

function median(values: number[]): number {
  const finite = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

function medianSample(samples: Sample[]): Sample {
  return {
    cpuUsPerReq: median(samples.map((s) => s.cpuUsPerReq)),
    p50Us: median(samples.map((s) => s.p50Us)),
    p99Us: median(samples.map((s) => s.p99Us)),
    rps: median(samples.map((s) => s.rps)),
    upstreamPerCall: median(samples.map((s) => s.upstreamPerCall)),
    upstreamCpuUsPerReq: median(samples.map((s) => s.upstreamCpuUsPerReq)),
    sidecarCpuUsPerReq: median(samples.map((s) => s.sidecarCpuUsPerReq)),
  };
}

function wrapCall(name: string, inst: CandidateInstance): () => Promise<void> {
  // A failing call aborts the whole run: numbers from a broken client are meaningless.
  return () =>
    inst.call().catch((err: unknown) => {
      throw new Error(`candidate "${name}" failed a call`, { cause: err });
    });
}

// ---------------------------------------------------------------- one level

/** Run every candidate at one concurrency level, interleaved over rounds. */
export async function runLevel(candidates: Candidate[], origin: string, opts: RunOptions): Promise<LevelResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const lat = new Float64Array(opts.requests);
  const instances: { name: string; inst: CandidateInstance; call: () => Promise<void> }[] = [];
  try {
    for (const c of candidates) {
      const inst = await c.setup(origin, opts.concurrency);
      // Raw call for the measured run (one wrapper less); wrapped one for warm-up, so a
      // broken candidate fails with its name before anything is measured.
      instances.push({ name: c.name, inst, call: () => inst.call() });
      if (opts.warmup > 0) await drive(wrapCall(c.name, inst), opts.warmup, opts.concurrency, null);
    }

    const samples: Sample[][] = candidates.map(() => []);
    for (let r = 0; r < opts.rounds; r++) {
      const start = opts.rotate ? r % instances.length : 0;
      const order: string[] = [];
      for (let k = 0; k < instances.length; k++) {
        const idx = (start + k) % instances.length;
        const { name, inst, call } = instances[idx]!;
        order.push(name);
        // Full GC first, then the re-warm: the GC's background sweeping and finalizers run on other
        // threads, and process.cpuUsage() counts every thread, so they must finish before the
        // measured run starts rather than be charged to it.
        collect();
        if (opts.roundWarmup > 0) await drive(wrapCall(name, inst), opts.roundWarmup, opts.concurrency, null);
        const before = opts.upstreamStats ? await opts.upstreamStats() : null;
        const sidecarBefore = inst.sidecarCpuUs?.() ?? Number.NaN;
        let s: ClientSample;
        try {
          s = await measure(call, opts.requests, opts.concurrency, lat);
        } catch (err) {
          throw new Error(`candidate "${name}" failed a call`, { cause: err });
        }
        const sidecarAfter = inst.sidecarCpuUs?.() ?? Number.NaN;
        const after = opts.upstreamStats ? await opts.upstreamStats() : null;
        const n = opts.requests;
        samples[idx]!.push({
          ...s,
          upstreamPerCall: before && after ? (after.total - before.total) / n : Number.NaN,
          upstreamCpuUsPerReq: before && after ? (after.cpuUs - before.cpuUs) / n : Number.NaN,
          sidecarCpuUsPerReq: (sidecarAfter - sidecarBefore) / n,
        });
      }
      log(`  c=${opts.concurrency} round ${r + 1}/${opts.rounds} done (${order.join(' → ')})`);
    }

    return {
      concurrency: opts.concurrency,
      requests: opts.requests,
      rounds: opts.rounds,
      results: candidates.map((c, i) => ({ name: c.name, samples: samples[i]!, median: medianSample(samples[i]!) })),
    };
  } finally {
    for (const { inst } of instances) await inst.close();
    collect();
  }
}

/**
 * CPU per request of the harness itself (a call that does nothing), so readers
 * can see the loop's cost is negligible next to any real client.
 */
export async function measureHarnessOverhead(concurrency: number, requests: number): Promise<number> {
  const lat = new Float64Array(requests);
  const noop = () => Promise.resolve();
  await drive(noop, requests, concurrency, lat);
  collect();
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push((await measure(noop, requests, concurrency, lat)).cpuUsPerReq);
  return median(runs);
}

// ---------------------------------------------------------------- report

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function ratio(v: number, base: number | undefined): string {
  return base !== undefined && Number.isFinite(v) && base > 0 ? `${(v / base).toFixed(2)}x` : '–';
}

function delta(v: number, base: number | undefined): string {
  if (base === undefined || !Number.isFinite(v)) return '–';
  const d = v - base;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)}`;
}

/** A plain-text table for one level; ratios are value / baseline (for req/s, higher is better). */
export function formatTable(level: LevelResult, baselineName: string = BASELINE_NAME): string {
  const base = level.results.find((r) => r.name === baselineName)?.median;
  const header = [
    'candidate',
    'CPU µs/req',
    'vs base',
    'Δ µs/req',
    'CPU min–max',
    'p50 µs',
    'vs base',
    'p99 µs',
    'vs base',
    'req/s',
    'vs base',
    'upstream/call',
    'upstream CPU µs/req',
  ];
  const sidecars = level.results.some((r) => Number.isFinite(r.median.sidecarCpuUsPerReq));
  if (sidecars) header.push('sidecar CPU µs/req', 'client+sidecar vs base');
  const rows = level.results.map(({ name, median: m, samples }) => {
    const cpus = samples.map((s) => s.cpuUsPerReq);
    return [
      name,
      fmt(m.cpuUsPerReq, 1),
      ratio(m.cpuUsPerReq, base?.cpuUsPerReq),
      delta(m.cpuUsPerReq, base?.cpuUsPerReq),
      `${fmt(Math.min(...cpus), 1)}–${fmt(Math.max(...cpus), 1)}`,
      fmt(m.p50Us, 0),
      ratio(m.p50Us, base?.p50Us),
      fmt(m.p99Us, 0),
      ratio(m.p99Us, base?.p99Us),
      fmt(m.rps, 0),
      ratio(m.rps, base?.rps),
      fmt(m.upstreamPerCall, 2),
      fmt(m.upstreamCpuUsPerReq, 1),
      ...(sidecars ? [fmt(m.sidecarCpuUsPerReq, 1), ratio(m.cpuUsPerReq + (Number.isFinite(m.sidecarCpuUsPerReq) ? m.sidecarCpuUsPerReq : 0), base?.cpuUsPerReq)] : []),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const title =
    `concurrency ${level.concurrency} · ${level.requests} requests × ${level.rounds} rounds per candidate · ` +
    `median over rounds · baseline "${baselineName}"${base ? '' : ' (not run: no ratios)'}`;
  return [title, line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
