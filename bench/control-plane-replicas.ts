/**
 * Control plane replicas bench: how fast one revision reaches 10,000 watchers spread over three
 * control-plane replicas sharing one etcd, and each replica's resident memory. A publish goes to one
 * replica (a transaction in etcd); the others learn it from their etcd watch and push it to their own
 * watchers. The baseline is the bare SSE broadcaster (bench/sse-baseline.ts) holding all the watchers
 * in one process, with no store at all; rounds alternate baseline and replicas.
 *
 *   node bench/control-plane-replicas.ts [--rounds N] [--watchers N] [--replicas N]
 *
 * etcd is Debian's etcd-server, started by the test set-up's helper (test/helpers/etcd.ts) on free
 * loopback ports in a temporary directory. Latency is from just before the publish request is sent
 * to a watcher reading the event, on one machine's clock.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRevision } from '../lib/control-plane/revision.ts';
import { startEtcd } from '../test/helpers/etcd.ts';
import { addWatchers, document, mb, quantile, reply, startBaseline, startControlPlaneChild } from './control-plane.ts';
import type { Target } from './control-plane.ts';

export interface ReplicaBenchOptions {
  rounds: number;
  /** Watchers in all, spread evenly over the replicas. */
  watchers: number;
  replicas: number;
}

/** Publishes on `via`; resolves with the latency of every watcher of every target in `group`, in ms. */
async function propagate(group: readonly Target[], via: Target, round: number, ordered: boolean): Promise<number[]> {
  const doc = document(round);
  const digest = buildRevision(doc, 'bench', 'api').digest;
  // A replica names the revision `<etcd revision>-<digest prefix>`, known only once published.
  const marker = ordered ? { expect: digest, marker: `-${digest.slice(0, 8)}\ndata: ` } : { expect: digest };
  const children = group.flatMap((t) => t.children);
  await Promise.all(children.map((child) => {
    const armed = reply(child, 'armed');
    child.send(marker);
    return armed;
  }));
  const arrivals = Promise.all(children.map((child) => reply<number[]>(child, 'arrivals')));
  const start = performance.timeOrigin + performance.now();
  await via.publish(doc, digest);
  return (await arrivals).flat().map((at) => at - start);
}

export async function runReplicaBench(options: ReplicaBenchOptions, log: (line: string) => void = () => {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-replica-bench-'));
  const seedFile = join(dir, 'policy.json');
  writeFileSync(seedFile, JSON.stringify(document(0)));
  const etcd = await startEtcd();
  const store = `etcd://${etcd.endpoint}/bench`;
  const replicas: Target[] = [];
  const baseline = await startBaseline();
  try {
    for (let i = 0; i < options.replicas; i++) {
      replicas.push(await startControlPlaneChild(`replica ${i + 1}`, ['--store', store, ...(i === 0 ? ['--policy', seedFile] : [])]));
    }
    const rssIdle = await Promise.all(replicas.map((r) => r.rss()));
    const initial = ((await (await fetch(`http://127.0.0.1:${replicas[0]!.port}/v1/policy`)).json()) as { revision: string }).revision;
    const share = Math.ceil(options.watchers / options.replicas);
    for (const [i, r] of replicas.entries()) {
      log(`replica ${i + 1}: opening ${share} watch streams`);
      await addWatchers(r, share, initial);
    }
    log(`baseline: opening ${share * options.replicas} watch streams`);
    await addWatchers(baseline, share * options.replicas, buildRevision(document(0), 'bench', 'api').digest);
    const rssHeld = await Promise.all(replicas.map((r) => r.rss()));

    const latencies: Record<'baseline' | 'replicas', number[]> = { baseline: [], replicas: [] };
    const WARMUP = 2;
    for (let round = 1; round <= WARMUP + options.rounds; round++) {
      // Publishes rotate over the replicas: each is in turn the one written to and the ones that learn it from etcd.
      const via = replicas[round % replicas.length]!;
      const runs: Array<() => Promise<void>> = [
        async () => void (round > WARMUP && latencies.baseline.push(...(await propagate([baseline], baseline, round, false)))),
        async () => void (round > WARMUP && latencies.replicas.push(...(await propagate(replicas, via, round, true)))),
      ];
      for (const run of round % 2 ? runs : [...runs].reverse()) await run();
    }
    const p = (name: keyof typeof latencies, q: number) => quantile([...latencies[name]].sort((a, b) => a - b), q);
    const total = share * options.replicas;
    return [
      `Control plane replicas on etcd: one revision pushed to ${total} watchers over ${options.replicas} replicas, ${options.rounds} rounds after ${WARMUP} warm-up (ms, from publish request to event read)`,
      `${'candidate'.padEnd(44)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'max'.padStart(8)}${'p99 ratio'.padStart(11)}`,
      ...(['baseline', 'replicas'] as const).map((name) => {
        const label = name === 'baseline' ? `bare SSE broadcaster (1 process, no store)` : `${options.replicas} replicas on etcd`;
        return `${label.padEnd(44)}${p(name, 0.5).toFixed(1).padStart(8)}${p(name, 0.99).toFixed(1).padStart(8)}${p(name, 1).toFixed(1).padStart(8)}${`${(p(name, 0.99) / p('baseline', 0.99)).toFixed(2)}x`.padStart(11)}`;
      }),
      '',
      `Resident set size of each replica (MB): idle → holding ${share} watch streams`,
      ...replicas.map((_r, i) => `  replica ${i + 1}: ${mb(rssIdle[i]!)} → ${mb(rssHeld[i]!)}`),
    ].join('\n');
  } finally {
    for (const t of [baseline, ...replicas]) {
      for (const child of t.children) {
        child.send({ close: true });
        await once(child, 'exit');
      }
      await t.close();
    }
    await etcd.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, watchers: { type: 'string' }, replicas: { type: 'string' } } });
  const options = { rounds: Number(values.rounds ?? 10), watchers: Number(values.watchers ?? 10_000), replicas: Number(values.replicas ?? 3) };
  process.stdout.write(`${await runReplicaBench(options, (line) => process.stderr.write(`${line}\n`))}\n`);
}
