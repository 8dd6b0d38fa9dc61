// `npm run demo`: the control plane, storefront → orders → payments as child processes on loopback
// (mTLS between them, with certificates made by `meshfetch certs` at the start),
// traffic for --duration seconds (default 20; --smoke: 10) while payments fails and stalls a share
// of its answers, a live table of what each mesh sees, and a policy change midway.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import type { Duration, MeshStatsSnapshot } from 'meshfetch';
import { start, stopAll } from './demo/children.ts';
import { demoPolicy } from './demo/policy.ts';
import { edgeRows, renderTable } from './demo/table.ts';
import { startTraceSink } from './demo/trace-sink.ts';
import type { TraceSink } from './demo/trace-sink.ts';

const { values } = parseArgs({ options: { duration: { type: 'string' }, smoke: { type: 'boolean' }, rps: { type: 'string' } } });
const durationMs = Number(values.duration ?? (values.smoke ? 10 : 20)) * 1_000;
const rps = Number(values.rps ?? 40);
if (!(durationMs >= 4_000 && durationMs <= 600_000) || !(rps >= 1 && rps <= 1_000)) {
  console.error('usage: npm run demo -- [--duration SECONDS (4 to 600)] [--smoke] [--rps N (1 to 1000)]');
  process.exit(2);
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'meshfetch-demo-'));
const policyFile = join(dir, 'policy.yaml');
const adminToken = randomBytes(16).toString('hex');
const tty = process.stdout.isTTY === true;
const log: string[] = [];
/** When the traffic started; notes before it are set-up. */
let began: number | undefined;
/** Ctrl-C ends the traffic early; the clean-up below still runs. */
const interrupted = new AbortController();
process.once('SIGINT', () => interrupted.abort());
const note = (line: string): void => {
  const entry = `${began === undefined ? 'set-up' : `t=${((Date.now() - began) / 1_000).toFixed(1).padStart(4)}s`}  ${line}`;
  log.push(entry);
  if (!tty) console.log(entry);
};

let sink: TraceSink | undefined;
const otlp = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
const certs = join(dir, 'certs');
const urls: Record<string, string> = {};
let agent: Agent | undefined;

async function main(): Promise<void> {
  if (otlp === undefined) sink = await startTraceSink(join(dir, 'traces.jsonl'));
  const telemetry: Record<string, string> = {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_BSP_SCHEDULE_DELAY: '500',
    ...(sink && { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: sink.url }),
  };

  // A development CA and one SPIFFE certificate per service, and one for the demo's load generator.
  const made = await promisify(execFile)(process.execPath, [cli, 'certs', '--out', certs, 'storefront', 'orders', 'payments', 'loadgen']);
  note(`certificates: ${made.stdout.match(/spiffe:\/\//g)?.length ?? 0} issued by a new CA in ${certs} (meshfetch certs)`);
  agent = new Agent({ connections: 64, connect: { cert: readFileSync(join(certs, 'loadgen.crt')), key: readFileSync(join(certs, 'loadgen.key')), ca: readFileSync(join(certs, 'ca.crt')) } });

  // The control plane starts with defaults only; the endpoints are known once the services listen.
  writeFileSync(policyFile, stringify({ apiVersion: 'meshfetch/v1', defaults: {} }));
  const cp = await start('control plane', [cli, 'control-plane', '--policy', policyFile, '--port', '0'], { MESHFETCH_ADMIN_TOKEN: adminToken }, root);
  const controlPlane = /listening on (\S+)/.exec(cp.firstLine)![1]!;
  note(`control plane on ${controlPlane}, policy in ${policyFile}`);
  note(`dashboard: open ${controlPlane}/ while the demo runs (or: meshfetch stat --control-plane ${controlPlane} -w)`);
  await Promise.all(
    ['payments', 'orders', 'storefront'].map(async (service) => {
      const child = await start(service, ['--import', 'meshfetch/register', '--import', here('./tracing.ts'), here(`./${service}.ts`)], {
        ...telemetry,
        MESHFETCH_CONTROL_PLANE: controlPlane,
        OTEL_SERVICE_NAME: service,
        MESHFETCH_LOG_LEVEL: 'error',
        MESHFETCH_REPORT_INTERVAL: '1s', // figures to the control plane's dashboard (default 10s)
        MESHFETCH_TLS_CERT: join(certs, `${service}.crt`),
        MESHFETCH_TLS_KEY: join(certs, `${service}.key`),
        MESHFETCH_TLS_CA: join(certs, 'ca.crt'),
      }, root);
      urls[service] = (JSON.parse(child.firstLine) as { url: string }).url;
      note(`${service} on ${urls[service]} (pid ${child.process.pid})`);
    }),
  );
  await publish({ perTryTimeout: '2s' }, controlPlane, 'policy published with the endpoints');
  await warmUp();

  const timeline: [number, () => Promise<void>][] = [
    [0, () => faults({ failShare: 0.1 }, 'payments fails 10% of charges (503): retries hide them')],
    [0.1, () => faults({ failShare: 1 }, 'payments outage: every charge fails; budgets stop the retries, breakers open')],
    [0.3, () => faults({ failShare: 0.1, slowShare: 0.05, slowMs: 500 }, 'payments is back, but stalls 5% of answers for 500 ms')],
    [0.55, () => publish({ perTryTimeout: '100ms' }, controlPlane, 'POLICY CHANGE: payments perTryTimeout 2s -> 100ms; stalled attempts are retried')],
  ];
  await drive(timeline);
}

async function publish(payments: { perTryTimeout: Duration }, controlPlane: string, what: string): Promise<void> {
  writeFileSync(join(dir, 'next-policy.yaml'), stringify(demoPolicy(urls, payments)));
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'policy', 'apply', join(dir, 'next-policy.yaml'), '--control-plane', controlPlane], {
    env: { ...process.env, MESHFETCH_ADMIN_TOKEN: adminToken },
  });
  note(`${what} (${stdout.trim().replace(/ \(was .*\)$/, '')})`);
}

async function faults(change: Record<string, number>, what: string): Promise<void> {
  await (await request(`${urls.payments}/_faults`, { method: 'PUT', body: JSON.stringify(change), dispatcher: agent })).body.dump();
  note(what);
}

/** Until storefront answers a checkout (every mesh has the endpoints), at most 50 tries 100 ms apart. */
async function warmUp(): Promise<void> {
  for (let tries = 0; tries < 50; tries++) {
    const { statusCode, body } = await request(`${urls.storefront}/checkout`, { dispatcher: agent });
    await body.dump();
    if (statusCode === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('storefront did not answer a checkout within 5 s of the policy being published');
}

const outcomes = { sent: 0, ok: 0, failed: 0 };

async function checkout(): Promise<void> {
  outcomes.sent++;
  try {
    const { statusCode, body } = await request(`${urls.storefront}/checkout`, { dispatcher: agent });
    await body.dump();
    if (statusCode === 200) outcomes.ok++;
    else outcomes.failed++;
  } catch {
    outcomes.failed++;
  }
}

async function stats(): Promise<MeshStatsSnapshot[]> {
  return Promise.all(
    ['storefront', 'orders'].map(async (service) => (await request(`${urls[service]}/_stats`, { dispatcher: agent })).body.json() as Promise<MeshStatsSnapshot>),
  );
}

let drawnLines = 0;
async function show(final = false): Promise<void> {
  const seconds = ((Date.now() - began!) / 1_000).toFixed(1);
  const table = renderTable(edgeRows(await stats()));
  const traffic = `checkouts since the start: ${outcomes.sent} sent, ${outcomes.ok} ok, ${outcomes.failed} failed (the table: the last 2 s)`;
  if (!tty) return void console.log(`\n--- t=${seconds}s${final ? ' (final)' : ''} ---\n${table}\n${traffic}\n`);
  const width = process.stdout.columns || 120; // a wrapped line would break the redraw
  const screen = [`meshfetch demo, t=${seconds}s of ${durationMs / 1_000}s`, '', table, '', traffic, '', ...log.slice(-8)]
    .map((line) => line.slice(0, width - 1))
    .join('\n');
  process.stdout.write(`${drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[J` : ''}${screen}\n`);
  drawnLines = screen.split('\n').length;
}

async function drive(timeline: [number, () => Promise<void>][]): Promise<void> {
  const startedAt = (began = Date.now());
  note('traffic starts');
  const inFlight = new Set<Promise<void>>();
  const sender = setInterval(() => {
    const call = checkout().finally(() => inFlight.delete(call));
    inFlight.add(call);
  }, 1_000 / rps);
  // Without a TTY, a snapshot every 2 s; the smoke run's outage lasts 2 s, so it looks every 500 ms to catch the open breaker.
  const every = tty || values.smoke ? 500 : 2_000;
  let next = 0;
  let shownAt = startedAt;
  while (Date.now() - startedAt < durationMs && !interrupted.signal.aborted) {
    const elapsed = (Date.now() - startedAt) / durationMs;
    while (next < timeline.length && timeline[next]![0] <= elapsed) await timeline[next++]![1]();
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (Date.now() - shownAt >= every && !interrupted.signal.aborted) {
      shownAt = Date.now();
      await show();
    }
  }
  clearInterval(sender);
  if (interrupted.signal.aborted) return; // the checkouts still in flight end with the agent, below
  await Promise.all(inFlight);
  await show(true);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  const pids = await stopAll();
  await agent?.destroy(); // nothing is left to answer what is still in flight
  console.log(`stopped ${pids.length} processes (pids ${pids.join(' ')})`);
  if (sink) {
    await sink.close();
    console.log(`traces: ${sink.spans()} spans in ${sink.traces()} traces, as OTLP/JSON in ${join(dir, 'traces.jsonl')}`);
    console.log('  (set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://localhost:4318 for Jaeger, to send them to a collector instead)');
  } else {
    console.log(`traces: sent to ${otlp} (OTEL_EXPORTER_OTLP_ENDPOINT)`);
  }
  console.log(`policy revisions: ${policyFile} (the control plane's file store)`);
}
process.exitCode = exitCode;
