/**
 * Control plane bench: how fast one revision reaches 1,000 watchers, and what holding 1,000 and
 * 10,000 idle watchers costs in memory. The control plane (the real CLI, `meshfetch control-plane`)
 * and the baseline (bench/sse-baseline.ts: a bare node:http SSE broadcaster with no validation and
 * no file) each run in a child process; watchers are raw sockets in other child processes
 * (bench/control-plane-watchers.ts). Rounds alternate baseline and control plane.
 *
 *   node bench/control-plane.ts [--rounds N] [--watchers N] [--idle N]
 *
 * Latency is from just before the publish request is sent to a watcher reading the event
 * (publish → validate → write the file atomically → push), on one machine's clock.
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRevision } from '../lib/control-plane/revision.ts';

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url));
const BASELINE = fileURLToPath(new URL('./sse-baseline.ts', import.meta.url));
const WATCHERS = fileURLToPath(new URL('./control-plane-watchers.ts', import.meta.url));
export const TOKEN = 'bench-admin-token-0123456789';
/** Sockets per watcher process. */
const PER_PROCESS = 2_500;

export interface ControlPlaneBenchOptions {
  rounds: number;
  /** Watchers a revision is pushed to. */
  watchers: number;
  /** The larger idle count whose memory is measured (the smaller is `watchers`). */
  idle: number;
}

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly watchPath: string;
  readonly children: ChildProcess[];
  publish(document: Record<string, unknown>, revision: string): Promise<void>;
  rss(): Promise<number>;
  close(): Promise<void>;
}

export const document = (round: number): Record<string, unknown> => ({
  apiVersion: 'meshfetch/v1',
  services: { payments: { endpoints: [`http://127.0.0.1:${10_000 + round}`], retry: { attempts: 2 } } },
});

export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
}

export function reply<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: Record<string, unknown>) => {
      if (!(key in message)) return;
      child.off('message', onMessage);
      resolve(message[key] as T);
    };
    child.on('message', onMessage);
  });
}

async function startMeshfetch(dir: string): Promise<Target> {
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(document(0)));
  return startControlPlaneChild('meshfetch control plane', ['--policy', policyFile]);
}

/** `meshfetch control-plane <args> --port 0` in a child process, as a bench target. */
export async function startControlPlaneChild(name: string, args: readonly string[]): Promise<Target> {
  const child = spawn(process.execPath, [CLI, 'control-plane', ...args, '--port', '0'], {
    env: { ...process.env, MESHFETCH_ADMIN_TOKEN: TOKEN, MESHFETCH_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = /listening on (\S+)/.exec(await firstLine(child))![1]!;
  return {
    name,
    port: Number(new URL(url).port),
    watchPath: '/v1/policy/watch',
    children: [],
    async publish(doc) {
      const res = await fetch(`${url}/v1/policy`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(doc) });
      if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    },
    async rss() {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(/^meshfetch_control_plane_resident_memory_bytes (\d+)/m.exec(text)![1]);
    },
    async close() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export async function startBaseline(): Promise<Target> {
  const child = spawn(process.execPath, [BASELINE], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = Number(await firstLine(child));
  const url = `http://127.0.0.1:${port}`;
  return {
    name: 'bare SSE broadcaster',
    port,
    watchPath: '/watch',
    children: [],
    async publish(doc, revision) {
      await (await fetch(`${url}/publish?revision=${revision}`, { method: 'POST', body: JSON.stringify(doc) })).text();
    },
    async rss() {
      return Number(await (await fetch(`${url}/rss`)).text());
    },
    async close() {
      child.stdin!.end();
      await once(child, 'exit');
    },
  };
}

/** Opens `count` more watch streams to `target`, in watcher processes of up to PER_PROCESS sockets. */
export async function addWatchers(target: Target, count: number, lastEventId: string): Promise<void> {
  while (count > 0) {
    const n = Math.min(PER_PROCESS, count);
    const child = fork(WATCHERS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    target.children.push(child);
    const connected = reply<number>(child, 'connected');
    child.send({ connect: { port: target.port, path: target.watchPath, count: n, lastEventId } });
    await connected;
    count -= n;
  }
}

/** Publishes one revision; resolves with each watcher's latency and the publish request's own time, in ms. */
async function propagate(target: Target, round: number): Promise<{ latencies: number[]; publish: number }> {
  const doc = document(round);
  const revision = buildRevision(doc, 'bench', 'api').revision;
  await Promise.all(target.children.map((child) => {
    const armed = reply(child, 'armed');
    child.send({ expect: revision });
    return armed;
  }));
  const arrivals = Promise.all(target.children.map((child) => reply<number[]>(child, 'arrivals')));
  const start = performance.timeOrigin + performance.now();
  await target.publish(doc, revision);
  const publish = performance.timeOrigin + performance.now() - start;
  return { latencies: (await arrivals).flat().map((at) => at - start), publish };
}

export const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
export const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

export async function runControlPlaneBench(options: ControlPlaneBenchOptions, log: (line: string) => void = () => {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-cp-bench-'));
  const targets = [await startBaseline(), await startMeshfetch(dir)];
  try {
    const rss: Record<string, number[]> = {};
    for (const t of targets) rss[t.name] = [await t.rss()];
    const initial = buildRevision(document(0), 'bench', 'api').revision;
    for (const t of targets) {
      log(`${t.name}: opening ${options.watchers} watch streams`);
      await addWatchers(t, options.watchers, initial);
      rss[t.name]!.push(await t.rss());
    }
    const latencies: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
    const publishes: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
    const WARMUP = 3;
    for (let round = 1; round <= WARMUP + options.rounds; round++) {
      const order = round % 2 ? targets : [...targets].reverse();
      for (const t of order) {
        const measured = await propagate(t, round);
        if (round > WARMUP) {
          latencies[t.name]!.push(...measured.latencies);
          publishes[t.name]!.push(measured.publish);
        }
      }
    }
    const atIdle: Record<string, number[]> = {};
    for (const t of targets) {
      log(`${t.name}: opening ${options.idle - options.watchers} more watch streams`);
      await addWatchers(t, options.idle - options.watchers, 'none');
      rss[t.name]!.push(await t.rss());
      atIdle[t.name] = (await propagate(t, WARMUP + options.rounds + 1)).latencies;
    }

    const base = targets[0]!.name;
    const p = (name: string, q: number, from = latencies) => quantile([...from[name]!].sort((a, b) => a - b), q);
    const lines = [
      `Control plane: one revision pushed to ${options.watchers} watchers, ${options.rounds} rounds after ${WARMUP} warm-up (ms, from publish request to event read)`,
      `${'candidate'.padEnd(26)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'max'.padStart(8)}${'p99 ratio'.padStart(11)}${'publish p50/max'.padStart(17)}   ${`p50/p99 at ${options.idle}`.padStart(16)}`,
      ...targets.map((t) =>
        `${t.name.padEnd(26)}${p(t.name, 0.5).toFixed(1).padStart(8)}${p(t.name, 0.99).toFixed(1).padStart(8)}${p(t.name, 1).toFixed(1).padStart(8)}${`${(p(t.name, 0.99) / p(base, 0.99)).toFixed(2)}x`.padStart(11)}${`${p(t.name, 0.5, publishes).toFixed(1)}/${p(t.name, 1, publishes).toFixed(1)}`.padStart(17)}   ${`${p(t.name, 0.5, atIdle).toFixed(0)}/${p(t.name, 0.99, atIdle).toFixed(0)}`.padStart(16)}`,
      ),
      `(publish: the time the publish request itself took: for the control plane, validation and the fsync'd atomic file write happen before the push)`,
      '',
      `Resident set size holding idle watch streams (MB)`,
      `${'candidate'.padEnd(26)}${'0'.padStart(8)}${String(options.watchers).padStart(8)}${String(options.idle).padStart(8)}${'KB/watcher'.padStart(12)}${'ratio'.padStart(8)}`,
      ...targets.map((t) => {
        const [zero, small, large] = rss[t.name]! as [number, number, number];
        const per = (large - zero) / options.idle / 1024;
        const basePer = (rss[base]![2]! - rss[base]![0]!) / options.idle / 1024;
        return `${t.name.padEnd(26)}${mb(zero).padStart(8)}${mb(small).padStart(8)}${mb(large).padStart(8)}${per.toFixed(1).padStart(12)}${`${(per / basePer).toFixed(2)}x`.padStart(8)}`;
      }),
    ];
    return lines.join('\n');
  } finally {
    for (const t of targets) {
      for (const child of t.children) {
        child.send({ close: true });
        await once(child, 'exit');
      }
      await t.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, watchers: { type: 'string' }, idle: { type: 'string' } } });
  const options = { rounds: Number(values.rounds ?? 10), watchers: Number(values.watchers ?? 1_000), idle: Number(values.idle ?? 10_000) };
  process.stdout.write(`${await runControlPlaneBench(options, (line) => process.stderr.write(`${line}\n`))}\n`);
}
