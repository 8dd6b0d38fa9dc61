/**
 * Retry amplification: a 100%-failing upstream (503) under a steady offered load, open loop (a call
 * starts every 1/rate s whether or not earlier ones finished). Reports upstream requests per logical
 * call for meshfetch with its default policy (retry budget) and for a fixed 3-attempt retry loop with
 * the same backoff.
 */
import { Pool } from 'undici';
import { createMesh } from '../lib/index.ts';
import { fullJitterBackoff } from '../lib/resilience/backoff.ts';
import type { Upstream } from './server.ts';

export interface AmplificationOptions {
  ratePerSecond: number;
  seconds: number;
}

export interface AmplificationResult {
  name: string;
  calls: number;
  upstreamRequests: number;
  perCall: number;
}

type LogicalCall = () => Promise<void>;

/** Starts `rate × seconds` calls on schedule and waits for all of them to settle. */
async function offer(call: LogicalCall, { ratePerSecond, seconds }: AmplificationOptions): Promise<number> {
  const total = Math.round(ratePerSecond * seconds);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  while (pending.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerSecond) + 1);
    while (pending.length < due) pending.push(call().catch(() => {}));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  return total;
}

async function measure(name: string, upstream: Upstream, call: LogicalCall, options: AmplificationOptions): Promise<AmplificationResult> {
  await upstream.reset();
  const calls = await offer(call, options);
  const upstreamRequests = (await upstream.counts()).total;
  return { name, calls, upstreamRequests, perCall: upstreamRequests / calls };
}

export async function runAmplification(upstream: Upstream, options: AmplificationOptions): Promise<AmplificationResult[]> {
  const mesh = createMesh({
    env: {},
    service: 'bench',
    policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: [upstream.origin] } } },
  });
  const client = mesh.client('upstream');
  const meshfetch = await measure('meshfetch (default policy)', upstream, async () => {
    const res = await client.fetch('/fail/item');
    await res.arrayBuffer();
  }, options);
  await mesh.close();

  const pool = new Pool(upstream.origin, { connections: 64 });
  const fixed = await measure('fixed 3-attempt loop', upstream, async () => {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await pool.request({ path: '/fail/item', method: 'GET' });
      await res.body.dump();
      if (res.statusCode !== 503 || attempt === 3) return;
      await new Promise((resolve) => setTimeout(resolve, fullJitterBackoff(attempt, 25, 250)));
    }
  }, options);
  await pool.close();
  return [meshfetch, fixed];
}

export function formatAmplification(results: AmplificationResult[], options: AmplificationOptions): string {
  const lines = [
    `retry amplification · 100% failing upstream (503) · ${options.ratePerSecond} calls/s for ${options.seconds} s, open loop`,
    'candidate                     calls  upstream requests  per logical call',
  ];
  for (const r of results) {
    lines.push(`${r.name.padEnd(28)}  ${String(r.calls).padStart(5)}  ${String(r.upstreamRequests).padStart(17)}  ${r.perCall.toFixed(3).padStart(16)}`);
  }
  return lines.join('\n');
}
