/**
 * The peer bench: what meshfetch with every layer on costs next to what one would do instead, same
 * workload, same process, interleaved rounds, ratios against raw undici:
 *   - meshfetch, default stack (deadline, retries with budget, breaker, P2C balancer, limits,
 *     telemetry), the OpenTelemetry SDK registered;
 *   - got + opossum + p-retry + one OTel CLIENT span per call (trace context injected), by hand;
 *   - undici + opossum + p-retry + one OTel span per call, by hand;
 *   - plain undici through a local haproxy sidecar (keep-alive, retries), its CPU counted.
 *
 *   node bench/peers.ts [--quick]   (npm run bench runs it in a child process: it registers the SDK)
 */
import './fetch-first.ts'; // must stay the first import: see the file
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Agent as HttpAgent } from 'node:http';
import got from 'got';
import CircuitBreaker from 'opossum';
import pRetry from 'p-retry';
import { Pool } from 'undici';
import { createMesh, defineService, shape } from '../lib/index.ts';
import { undiciRequest } from './baselines.ts';
import { BASELINE_NAME, BENCH_PATH, formatTable, runLevel } from './harness.ts';
import type { Candidate, CandidateInstance, LevelResult } from './harness.ts';
import { registerSdk } from './otel-sdk.ts';
import { startHaproxy } from './sidecar.ts';
import { startUpstream } from './server.ts';

const MESHFETCH = 'meshfetch, every layer + OTel SDK';
const GOT_STACK = 'got + opossum + p-retry + OTel';
const UNDICI_STACK = 'undici + opossum + p-retry + OTel';
const HAPROXY = 'undici → haproxy sidecar';

const Upstream = defineService({ routes: { item: { method: 'GET', path: BENCH_PATH, response: shape<{ id: number }>() } } });

const meshfetch: Candidate = {
  name: MESHFETCH,
  async setup(origin): Promise<CandidateInstance> {
    const mesh = createMesh({ env: {}, service: 'bench', policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: [origin] } } } });
    const client = mesh.client('upstream', Upstream);
    return { call: async () => void (await client.item()), close: () => mesh.close() };
  },
};

/**
 * What a team assembles by hand for one upstream: a CLIENT span around the call with the trace
 * context injected, an opossum breaker (its defaults, as Linkerd's/meshfetch's: 50 % over 10 s),
 * and p-retry with meshfetch's backoff (2 retries, 25 ms doubling to 250 ms, jittered).
 */
function handAssembled(name: string, open: (origin: string, concurrency: number) => { send(headers: Record<string, string>): Promise<unknown>; close(): Promise<void> }): Candidate {
  return {
    name,
    async setup(origin, concurrency): Promise<CandidateInstance> {
      const client = open(origin, concurrency);
      const retried = (headers: Record<string, string>): Promise<unknown> =>
        pRetry(() => client.send(headers), { retries: 2, minTimeout: 25, maxTimeout: 250, randomize: true });
      const breaker = new CircuitBreaker(retried, { errorThresholdPercentage: 50, volumeThreshold: 20, resetTimeout: 5_000, rollingCountTimeout: 10_000 });
      const tracer = trace.getTracer('bench-peer');
      const { hostname, port } = new URL(origin);
      const attributes = { 'http.request.method': 'GET', 'server.address': hostname, 'server.port': Number(port), 'url.full': `${origin}${BENCH_PATH}` };
      return {
        call: () =>
          tracer.startActiveSpan('GET', { kind: SpanKind.CLIENT, attributes }, async (span) => {
            const headers: Record<string, string> = {};
            propagation.inject(context.active(), headers);
            try {
              await breaker.fire(headers);
              span.setAttribute('http.response.status_code', 200);
            } catch (err) {
              span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
              throw err;
            } finally {
              span.end();
            }
          }),
        close: async () => {
          breaker.shutdown();
          await client.close();
        },
      };
    },
  };
}

const gotStack = handAssembled(GOT_STACK, (origin, concurrency) => {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: Math.max(concurrency, 32) });
  const client = got.extend({ prefixUrl: origin, agent: { http: agent }, retry: { limit: 0 } });
  const path = BENCH_PATH.slice(1);
  return { send: (headers) => client.get(path, { headers }).json(), close: async () => agent.destroy() };
});

const undiciStack = handAssembled(UNDICI_STACK, (origin, concurrency) => {
  const pool = new Pool(origin, { connections: Math.max(concurrency, 32) });
  return {
    async send(headers) {
      const { statusCode, body } = await pool.request({ path: BENCH_PATH, method: 'GET', headers });
      if (statusCode !== 200) {
        await body.dump();
        throw new Error(`status ${statusCode}`);
      }
      return body.json();
    },
    close: () => pool.close(),
  };
});

function throughHaproxy(log: (line: string) => void): Candidate {
  return {
    name: HAPROXY,
    async setup(origin, concurrency): Promise<CandidateInstance> {
      const sidecar = await startHaproxy(origin, log);
      const plain = await undiciRequest.setup(sidecar.origin, concurrency);
      return {
        call: plain.call,
        sidecarCpuUs: sidecar.cpuUs,
        close: async () => {
          await plain.close();
          await sidecar.close();
        },
      };
    },
  };
}

function criteria(level: LevelResult): string {
  const m = (name: string) => level.results.find((r) => r.name === name)!.median;
  const mesh = m(MESHFETCH).cpuUsPerReq;
  const gotCpu = m(GOT_STACK).cpuUsPerReq;
  const hop = m(HAPROXY);
  const hopCpu = hop.cpuUsPerReq + hop.sidecarCpuUsPerReq;
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  return [
    `criteria at concurrency ${level.concurrency} (CPU per call, medians of ${level.rounds} rounds):`,
    `  meshfetch / got stack: ${(mesh / gotCpu).toFixed(3)} (${mesh.toFixed(1)} vs ${gotCpu.toFixed(1)} µs)   limit ≤ 1/6 = 0.167: ${verdict(mesh * 6 <= gotCpu)}`,
    `  meshfetch / (client + haproxy): ${(mesh / hopCpu).toFixed(3)} (${mesh.toFixed(1)} vs ${hop.cpuUsPerReq.toFixed(1)} + ${hop.sidecarCpuUsPerReq.toFixed(1)} µs)   limit < 1: ${verdict(mesh < hopCpu)}`,
  ].join('\n');
}

export async function runPeerBench(quick: boolean, log: (line: string) => void): Promise<string> {
  const sdk = registerSdk();
  const upstream = await startUpstream();
  const out: string[] = [];
  try {
    for (const concurrency of [1, 32]) {
      const level = await runLevel([undiciRequest, meshfetch, gotStack, undiciStack, throughHaproxy(log)], upstream.origin, {
        concurrency,
        requests: quick ? (concurrency === 1 ? 1_500 : 4_000) : concurrency === 1 ? 4_000 : 12_000,
        rounds: quick ? 3 : 7,
        warmup: quick ? 1_000 : 3_000,
        roundWarmup: Math.max(200, concurrency * 10),
        rotate: true,
        upstreamStats: () => upstream.counts(),
        log,
      });
      out.push(`peers: ${formatTable(level)}`, criteria(level), '');
    }
  } finally {
    await upstream.close();
    await sdk.shutdown();
  }
  const { exported, ended } = sdk.exporter;
  out.push(`spans: ${exported} of ${ended} ended were exported by the batch processor (SDK defaults)${exported === ended ? ', none dropped' : `: ${ended - exported} DROPPED, the OTel candidates' figures are too low`}.`);
  out.push(`sidecar CPU: haproxy's user+system time from /proc/<pid>/stat (10 ms ticks: long runs), one thread; ratios vs "${BASELINE_NAME}".`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runPeerBench(process.argv.includes('--quick'), (line) => process.stderr.write(`${line}\n`)));
}
