/**
 * Benchmarks for circuit breaking, limits and load balancing (issue #7), each with a same-process
 * baseline:
 *   1. open-circuit fast-fail latency (p50/p99) against one successful call of the bare pipeline, and
 *      that the transport is not called at all while the circuit is open;
 *   2. memory and timers for 10,000 destinations (one call each), the whole stack vs the bare one;
 *   3. RSS across 1,000,000 calls to one destination after warm-up (in-process transport, so that the
 *      run takes seconds rather than the minutes a loopback round trip per call would);
 *   4. a skewed upstream set: 3 real loopback endpoints (in a child process), one 10x slower; P2C
 *      peak-EWMA vs round-robin in interleaved rounds: the slow endpoint's share of calls and the p99.
 *
 *   node --expose-gc bench/resilience.ts [--quick]
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createMesh, DEFAULT_STACK, defineService, shape, undiciTransport } from '../lib/index.ts';
import type { Layer, PolicyDocument } from '../lib/index.ts';
import { BARE_LAYERS } from './meshfetch.ts';
import { median, memoryTransport } from './pipeline.ts';

const run = promisify(execFile);
const gc = (globalThis as { gc?: () => void }).gc;
const collect = (): void => {
  for (let i = 0; i < 3; i++) gc?.();
};
const percentile = (sorted: Float64Array | number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
/**
 * An in-memory transport never yields to the event loop, and a dropped Response's body is released
 * by a FinalizationRegistry callback, which runs only on a later turn of the loop (a real transport's
 * I/O gives it those turns). Loops over in-memory calls yield now and then, as a server would.
 */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const Contract = defineService({ routes: { item: { method: 'GET', path: '/item', response: shape<{ id: number }>() } } });
const onePolicy = (service: PolicyDocument['services']): PolicyDocument => ({ apiVersion: 'meshfetch/v1', services: service });

/** 1. An open circuit fails a call without touching the transport. */
async function fastFail(calls: number): Promise<string> {
  const seen = { requests: 0 };
  const mesh = createMesh({
    env: {},
    transport: memoryTransport(503, seen),
    policy: onePolicy({ up: { endpoints: ['http://127.0.0.1:1'], retry: null, circuitBreaker: { volumeThreshold: 5, resetTimeout: '1h' } } }),
  });
  const client = mesh.client('up', Contract);
  for (let i = 0; i < 5; i++) await client.item().catch(() => {});
  const before = seen.requests;
  const times = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    try {
      await client.item();
      throw new Error('the circuit did not open');
    } catch (err) {
      if ((err as { code?: string }).code !== 'MESHFETCH_CIRCUIT_OPEN') throw err;
    }
    times[i] = performance.now() - t;
  }
  const sent = seen.requests - before;
  await mesh.close();

  const okMesh = createMesh({ env: {}, transport: memoryTransport(200), layers: BARE_LAYERS, policy: onePolicy({ up: { endpoints: ['http://127.0.0.1:1'] } }) });
  const ok = okMesh.client('up', Contract);
  const base = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await ok.item();
    base[i] = performance.now() - t;
  }
  await okMesh.close();
  times.sort();
  base.sort();
  const p99 = percentile(times, 0.99);
  return [
    `open circuit, ${calls} calls (typed JSON path, in-process transport):`,
    `  fast-fail      p50 ${us(percentile(times, 0.5))}  p99 ${us(p99)}  transport calls while open: ${sent}`,
    `  baseline (bare stack, successful in-memory call)  p50 ${us(percentile(base, 0.5))}  p99 ${us(percentile(base, 0.99))}  → fast-fail p99 ${(p99 / percentile(base, 0.99)).toFixed(2)}x of it`,
    `  target p99 ≤ 20 µs, no socket: ${p99 <= 0.02 && sent === 0 ? 'met' : 'NOT met'}`,
  ].join('\n');
}

/** 2. Memory and timers per destination: 10,000 services with two endpoints each, one call to each. */
async function manyDestinations(count: number, layers: readonly Layer[]): Promise<{ bytes: number; timers: number }> {
  const services: NonNullable<PolicyDocument['services']> = {};
  for (let i = 0; i < count; i++) services[`s${i}`] = { endpoints: [`http://10.0.${i >> 8}.${i & 255}:1`, `http://10.1.${i >> 8}.${i & 255}:1`] };
  const mesh = createMesh({ env: {}, transport: memoryTransport(200), layers, policy: onePolicy(services) });
  collect();
  const timersBefore = timers();
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    await (await mesh.client(`s${i}`).fetch('/x')).arrayBuffer();
    if (i % 1000 === 999) await yieldToLoop();
  }
  await yieldToLoop();
  collect();
  const result = { bytes: (process.memoryUsage().heapUsed - heapBefore) / count, timers: timers() - timersBefore };
  await mesh.close();
  return result;
}

async function destinations(count: number): Promise<string> {
  const full = await manyDestinations(count, DEFAULT_STACK);
  const bare = await manyDestinations(count, BARE_LAYERS);
  const extra = full.bytes - bare.bytes;
  return [
    `${count} destinations (2 endpoints each, one call each; heap after GC):`,
    `  bare stack     ${(bare.bytes / 1024).toFixed(2)} KB per destination, ${bare.timers} timers`,
    `  default stack  ${(full.bytes / 1024).toFixed(2)} KB per destination, ${full.timers} timers  (breaker, bulkhead, balancer, retry budget: +${(extra / 1024).toFixed(2)} KB)`,
    `  target ≤ 8 KB each, no timer per destination: ${full.bytes <= 8192 && full.timers < count / 100 ? 'met' : 'NOT met'}`,
  ].join('\n');
}

/** 3. RSS across many calls to one destination (in-process transport), sampled after warm-up. */
async function steadyRss(calls: number): Promise<string> {
  const mesh = createMesh({
    env: {},
    transport: memoryTransport(200),
    policy: onePolicy({ up: { endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'], rateLimit: { rps: 1e9, burst: 1e9 } } }),
  });
  const client = mesh.client('up', Contract);
  const warmup = Math.floor(calls / 10);
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < calls; i++) {
    await client.item();
    if (i >= warmup && (i - warmup) % Math.floor((calls - warmup) / 10) === 0) samples.push(process.memoryUsage().rss);
  }
  samples.push(process.memoryUsage().rss);
  const seconds = (performance.now() - started) / 1000;
  await mesh.close();
  const first = samples[0]!;
  const drift = Math.max(...samples.map((s) => Math.abs(s - first) / first));
  const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;
  return [
    `${calls} calls to one destination (3 endpoints, default stack + rate limit, typed JSON path, in-process transport, ${seconds.toFixed(1)} s):`,
    `  RSS after ${warmup} warm-up calls ${mb(first)}, at the end ${mb(samples.at(-1)!)}, min ${mb(Math.min(...samples))}, max ${mb(Math.max(...samples))}`,
    `  largest change from the first sample: ${(drift * 100).toFixed(1)} % (target ±10 %: ${drift <= 0.1 ? 'met' : 'NOT met'})`,
  ].join('\n');
}

/** 4. Three real loopback endpoints, one 10x slower, served by a child process; P2C peak-EWMA vs round-robin. */
async function serveDelayed(delays: number[]): Promise<void> {
  const origins: string[] = [];
  for (const ms of delays) {
    const server = createServer((_req, res) => void setTimeout(() => res.end('{"ok":true}'), ms));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  process.stdout.write(JSON.stringify(origins) + '\n');
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0)); // the parent went away or is done
}

async function startUpstreams(delays: number[]): Promise<{ origins: string[]; close: () => void }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', delays.join(',')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!.setEncoding('utf8'), 'data')) as [string];
  return { origins: JSON.parse(line) as string[], close: () => child.stdin!.end() };
}

async function skewedRound(origins: string[], strategy: 'peak-ewma' | 'round-robin', calls: number, concurrency: number) {
  const served = new Map<string, number>(origins.map((o) => [o, 0]));
  const mesh = createMesh({
    env: {},
    transport: undiciTransport(),
    policy: onePolicy({ up: { endpoints: origins, retry: null, loadBalancer: { strategy } } }),
    middleware: [{ name: 'count', after: 'endpoint', use: (next) => (req, ctx) => (served.set(req.origin, served.get(req.origin)! + 1), next(req, ctx)) }],
  });
  const client = mesh.client('up');
  const call = async (): Promise<number> => {
    const t = performance.now();
    await (await client.fetch('/x')).arrayBuffer();
    return performance.now() - t;
  };
  for (let i = 0; i < 200; i++) await call(); // connections and estimates settle
  for (const origin of origins) served.set(origin, 0);
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) times.push(await call());
    }),
  );
  await mesh.close();
  times.sort((a, b) => a - b);
  const total = [...served.values()].reduce((a, b) => a + b, 0);
  return { slowShare: served.get(origins[2]!)! / total, p99: percentile(times, 0.99), p50: percentile(times, 0.5) };
}

async function skewed(rounds: number, calls: number): Promise<string> {
  const FAST_MS = 20;
  const CONCURRENCY = 8;
  const upstreams = await startUpstreams([FAST_MS, FAST_MS, FAST_MS * 10]);
  const results = { 'peak-ewma': [] as Awaited<ReturnType<typeof skewedRound>>[], 'round-robin': [] as Awaited<ReturnType<typeof skewedRound>>[] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['peak-ewma', 'round-robin'] as const) : (['round-robin', 'peak-ewma'] as const);
      for (const strategy of order) results[strategy].push(await skewedRound(upstreams.origins, strategy, calls, CONCURRENCY));
    }
  } finally {
    upstreams.close();
  }
  const summary = (strategy: keyof typeof results) => ({
    share: median(results[strategy].map((r) => r.slowShare)),
    p50: median(results[strategy].map((r) => r.p50)),
    p99: median(results[strategy].map((r) => r.p99)),
  });
  const p2c = summary('peak-ewma');
  const rr = summary('round-robin');
  const line = (name: string, s: typeof p2c) => `  ${name.padEnd(12)} slow endpoint's share ${(s.share * 100).toFixed(1).padStart(5)} %   p50 ${s.p50.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms`;
  const better = rr.p99 / p2c.p99;
  return [
    `skewed upstream set: 3 loopback endpoints in a child process (${FAST_MS} ms, ${FAST_MS} ms, ${FAST_MS * 10} ms), concurrency ${CONCURRENCY}, ${calls} calls × ${rounds} rounds each, interleaved, median:`,
    line('P2C EWMA', p2c),
    line('round-robin', rr),
    `  p99 round-robin / P2C = ${better.toFixed(2)}x (target: share ≤ 10 % and ≥ 3x: ${p2c.share <= 0.1 && better >= 3 ? 'met' : 'NOT met'})`,
  ].join('\n');
}

const SECTIONS = ['fast-fail', 'destinations', 'rss', 'skewed'] as const;
type Section = (typeof SECTIONS)[number];

async function runSection(section: Section, quick: boolean): Promise<string> {
  switch (section) {
    case 'fast-fail':
      return fastFail(quick ? 20_000 : 100_000);
    case 'destinations':
      return destinations(10_000);
    case 'rss':
      return steadyRss(quick ? 200_000 : 1_000_000);
    case 'skewed':
      return skewed(quick ? 3 : 5, quick ? 600 : 2_000);
  }
}

/** Each section runs in a child process of its own, so that none inherits another's heap or timers. */
export async function runResilienceBench(quick: boolean): Promise<string> {
  const out: string[] = [];
  for (const section of SECTIONS) {
    const args = ['--expose-gc', fileURLToPath(import.meta.url), '--section', section, ...(quick ? ['--quick'] : [])];
    const { stdout } = await run(process.execPath, args);
    out.push(stdout.trimEnd());
  }
  return out.join('\n\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--section');
  const quick = process.argv.includes('--quick');
  const serve = process.argv.indexOf('--serve');
  if (serve !== -1) await serveDelayed(process.argv[serve + 1]!.split(',').map(Number));
  else if (at === -1) console.log(await runResilienceBench(quick));
  else console.log(await runSection(process.argv[at + 1] as Section, quick));
}
