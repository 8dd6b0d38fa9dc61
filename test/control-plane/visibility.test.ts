import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EdgeStats, RouteStats, StatsView } from '../../lib/control-plane/report-aggregator.ts';
import { startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { CLI, runCli, startChild } from '../helpers/processes.ts';
import type { Child } from '../helpers/processes.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { millis, perSecond, percent } from '../../lib/cli/readable.ts';
import { REPORT_VERSION, edgeReport } from '../../lib/telemetry/report.ts';

const STATS_CHILD = fileURLToPath(new URL('../fixtures/stats-child.ts', import.meta.url));
// The test always takes the screenshot; it replaces the one docs/visibility.md shows only when asked
// (MESHFETCH_UPDATE_SCREENSHOTS=1), so that a test run leaves the checkout as it was.
const SCREENSHOT = process.env.MESHFETCH_UPDATE_SCREENSHOTS === '1'
  ? fileURLToPath(new URL('../../docs/img/dashboard.png', import.meta.url))
  : join(tmpdir(), `meshfetch-dashboard-${process.pid}.png`);

/** The exact q-quantile of `values` lies between these two order statistics. */
function quantileBounds(values: readonly number[], q: number): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  return [sorted[Math.floor(rank)]!, sorted[Math.ceil(rank)]!];
}

/** A DDSketch quantile (1 % relative error) of `values`. */
function expectQuantile(actual: number, values: readonly number[], q: number): void {
  const [low, high] = quantileBounds(values, q);
  expect(actual, `p${q * 100}`).to.be.within(low * 0.98, high * 1.02);
}

describe('visibility: three services report through one control plane', function () {
  this.timeout(60_000);
  let payments: TestServer;
  let checkout: TestServer;
  let control: TestControlPlane;
  const children: Child[] = [];
  /** Call durations each child measured itself, by "service route". */
  const durations: Record<string, number[]> = {};
  /** Attempts payments refused with 503 (each then retried), by the id's prefix (f: frontend, c: checkout). */
  const refused = { f: 0, c: 0 };
  let view: StatsView;

  before(async () => {
    const seen = new Set<string>();
    payments = await startServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      // The first attempt for an even-numbered id fails; its retry succeeds.
      if (Number(id.slice(1)) % 2 === 0 && !seen.has(id)) {
        seen.add(id);
        refused[id[0] as 'f' | 'c']++;
        res.writeHead(503).end();
        return;
      }
      res.end('{}');
    });
    checkout = await startServer((_req, res) => void res.end('{}'));
    control = await startTestControlPlane({
      apiVersion: 'meshfetch/v1',
      revision: 'visibility-1',
      defaults: { retry: { attempts: 3, backoff: { base: '1ms', max: '5ms' } } },
      services: {
        payments: { endpoints: [payments.origin], routes: [{ name: 'charge', match: { method: 'GET', path: '/charges/:id' } }] },
        checkout: { endpoints: [checkout.origin] },
      },
    }, { logLevel: 'debug', dashboardInterval: 200 });
    const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `http://payments/charges/${prefix}${i + 1}`);
    const plan = {
      frontend: [...Array.from({ length: 6 }, () => 'http://checkout/orders'), ...ids('f', 4)],
      checkout: ids('c', 8),
    };
    const reports = collectReports(control);
    for (const [service, calls] of Object.entries(plan)) {
      const child = startChild([STATS_CHILD], {
        MESHFETCH_SERVICE: service,
        MESHFETCH_CONTROL_PLANE: control.url,
        MESHFETCH_REPORT_INTERVAL: '100ms',
        CALLS: JSON.stringify(calls),
      });
      children.push(child);
      const done = JSON.parse(await child.nextLine((line) => line.includes('"done"'))) as { instance: string; durations: Record<string, number[]> };
      for (const [key, list] of Object.entries(done.durations)) (durations[key] ??= []).push(...list);
      await reports.until(done.instance, calls.length);
    }
    reports.stop();
    view = await getJson<StatsView>(`${control.url}/v1/stats?window=1m`);
  });

  after(async () => {
    await Promise.all(children.map((child) => child.kill()));
    await control?.close();
    await payments?.close();
    await checkout?.close();
  });

  const edge = (from: string, to: string): EdgeStats => {
    const found = view.edges.find((e) => e.from === from && e.to === to);
    if (!found) throw new Error(`no edge ${from} -> ${to} in ${JSON.stringify(view.edges.map((e) => `${e.from}->${e.to}`))}`);
    return found;
  };

  it('merges every edge with the counts a hand count gives', () => {
    expect(view.instances).to.equal(2);
    expect(view.edges.map((e) => `${e.from}->${e.to}`).sort()).to.deep.equal(['checkout->payments', 'frontend->checkout', 'frontend->payments']);
    const hand = { 'frontend->checkout': [6, 0], 'frontend->payments': [4, refused.f], 'checkout->payments': [8, refused.c] } as const;
    for (const [name, [calls, retried]] of Object.entries(hand)) {
      const [from, to] = name.split('->') as [string, string];
      const e = edge(from, to);
      expect(e.requests, name).to.equal(calls);
      expect(e.successes, name).to.equal(calls);
      expect(e.successRate, name).to.equal(1);
      expect(e.attempts, name).to.equal(calls + retried);
      expect(e.attemptSuccesses, name).to.equal(calls);
      expect(e.retries, name).to.equal(retried);
      expect(e.instances, name).to.equal(1);
      expect(e.breaker, name).to.equal('closed');
      expect(e.rate, name).to.be.closeTo(calls / (e.windowMs / 1_000), 1e-9);
    }
    expect(refused).to.deep.equal({ f: 2, c: 4 });
  });

  it('merges latency sketches across instances: quantiles match the durations the callers measured', () => {
    const route = view.serviceRoutes.find((r) => r.to === 'payments' && r.route === 'charge')!;
    expect(route.requests).to.equal(12);
    const measured = durations['payments charge']!;
    expect(measured).to.have.length(12);
    expectQuantile(route.latency!.p50, measured, 0.5);
    expectQuantile(route.latency!.p95, measured, 0.95);
    expectQuantile(route.latency!.p99, measured, 0.99);
  });

  it('filters by from, to and route, and refuses a bad window', async () => {
    const fromFrontend = await getJson<StatsView>(`${control.url}/v1/stats?from=frontend`);
    expect(fromFrontend.edges.map((e) => e.to).sort()).to.deep.equal(['checkout', 'payments']);
    const toPayments = await getJson<StatsView>(`${control.url}/v1/stats?to=payments&route=charge`);
    expect(toPayments.routes.map((r) => `${r.from}:${r.route}:${r.requests}`).sort()).to.deep.equal(['checkout:charge:8', 'frontend:charge:4']);
    const bad = await fetch(`${control.url}/v1/stats?window=forever`);
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).to.include('window');
  });

  it('exposes the merged golden metrics on /metrics with from/to labels only', async () => {
    const text = await (await fetch(`${control.url}/metrics`)).text();
    expect(text).to.match(/^meshfetch_mesh_requests\{from="checkout",to="payments"\} 8$/m);
    expect(text).to.match(/^meshfetch_mesh_success_ratio\{from="frontend",to="payments"\} 1$/m);
    expect(text).to.match(/^meshfetch_mesh_retries\{from="checkout",to="payments"\} 4$/m);
    expect(text).to.match(/^meshfetch_mesh_latency_milliseconds\{from="checkout",to="payments",quantile="0.99"\} [\d.e-]+$/m);
    expect(text).to.match(/^meshfetch_mesh_reporting_instances 2$/m);
    expect(text).to.not.match(/instance="/);
  });

  it('meshfetch stat prints one row per edge, fitting 80 columns, and -o json the same figures', async () => {
    const text = await runCli(['stat', '--control-plane', control.url]);
    expect(text.code, text.stderr).to.equal(0);
    const lines = text.stdout.trimEnd().split('\n');
    for (const line of lines) expect(line.length).to.be.at.most(80);
    expect(lines[0]!.split(/\s+/)).to.deep.equal(['FROM', 'TO', 'SUCCESS', 'RPS', 'P50', 'P95', 'P99', 'RETRIES', 'BREAKER', 'INSTANCES']);
    const rows = lines.slice(1).map((line) => line.split(/\s+/));
    const row = rows.find((r) => r[0] === 'checkout' && r[1] === 'payments')!;
    expect(row[2]).to.equal('100.0%');
    expect(row[7]).to.equal('4');
    expect(row[8]).to.equal('closed');
    expect(row[9]).to.equal('1');
    const json = await runCli(['stat', '--control-plane', control.url, '--from', 'frontend', '-o', 'json']);
    const edges = JSON.parse(json.stdout) as EdgeStats[];
    expect(edges.map((e) => [e.to, e.requests]).sort()).to.deep.equal([['checkout', 6], ['payments', 4]]);
  });

  it('meshfetch routes payments shows effective success after retries above actual success per attempt', async () => {
    const { code, stdout, stderr } = await runCli(['routes', 'payments', '--control-plane', control.url]);
    expect(code, stderr).to.equal(0);
    const [header, row] = stdout.trimEnd().split('\n').map((line) => line.split(/\s+/));
    expect(header).to.deep.equal(['ROUTE', 'EFFECTIVE_SUCCESS', 'ACTUAL_SUCCESS', 'RPS', 'P50', 'P95', 'P99']);
    expect(row![0]).to.equal('charge');
    expect(row![1]).to.equal('100.0%');
    expect(row![2]).to.equal('66.6%'); // 12 of 18 attempts: floored, never rounded up
    const json = JSON.parse((await runCli(['routes', 'payments', '--control-plane', control.url, '-o', 'json'])).stdout) as RouteStats[];
    expect(json[0]!.attemptSuccessRate).to.be.closeTo(12 / 18, 1e-9);
  });

  it('meshfetch stat --watch without a terminal prints --count snapshots, one after another', async () => {
    const { code, stdout } = await runCli(['stat', '--control-plane', control.url, '--watch', '--interval', '100ms', '--count', '2']);
    expect(code).to.equal(0);
    expect(stdout).to.not.include('\x1b[');
    expect(stdout.split('\n').filter((line) => line.startsWith('FROM'))).to.have.length(2);
  });

  it('meshfetch stat --watch on a terminal (a pseudo-terminal from util-linux script) redraws in place', async () => {
    if (!existsSync('/usr/bin/script')) throw new Error('this test needs script(1) from util-linux: apt-get install bsdutils');
    const command = [process.execPath, CLI, 'stat', '--control-plane', control.url, '--watch', '--interval', '100ms', '--count', '2'].map(shellQuote).join(' ');
    const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '', TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code, stdout).to.equal(0);
    const frames = stdout.split('\x1b[H\x1b[2J').slice(1);
    expect(frames, 'each snapshot clears the screen and starts at its top').to.have.length(2);
    for (const frame of frames) expect(frame.split(/\r?\n/).filter((line) => line.startsWith('FROM'))).to.have.length(1);
  });

  it('the dashboard in headless Chromium shows each edge with the figures of /v1/stats, and the clients\' revisions', async function () {
    this.timeout(120_000);
    // The callers stop, so that their last reports, held for the ttl, are what both the page and /v1/stats show.
    await Promise.all(children.map((child) => child.kill()));
    const browser = await launchChromium({ width: 1280, height: 720 });
    try {
      const page = await browser.newPage();
      await page.goto(`${control.url}/`);
      await page.waitForSelector('#edges tbody tr');
      const cells = await page.$$eval('#edges tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent)));
      const stats = await getJson<StatsView>(`${control.url}/v1/stats`);
      const e = stats.edges.find((x) => x.from === 'checkout' && x.to === 'payments')!;
      const shown = cells.find((c) => c[0] === 'checkout' && c[1] === 'payments')!;
      // The page rounds as the CLI does.
      expect(shown.slice(2, 7)).to.deep.equal([percent(e.successRate), perSecond(e.rate), millis(e.latency!.p50), millis(e.latency!.p95), millis(e.latency!.p99)]);
      expect(shown.slice(7)).to.deep.equal([String(e.retries), e.breaker, String(e.instances)]);
      expect(cells).to.have.length(stats.edges.length);
      expect(await page.locator('#revision').textContent()).to.equal(control.cp.revision());
      expect(await page.locator('svg#graph line[data-edge="checkout -> payments"]').count()).to.equal(1);
      expect(await page.locator('#clients tbody tr').count()).to.be.at.least(2);
      // Live: a new caller's report appears without a reload.
      const loads: unknown[] = [];
      page.on('load', (p) => loads.push(p));
      const edge = edgeReport({ to: 'payments', route: 'charge', requests: 3, successes: 2, failures: 1, cancelled: 0, attempts: 3, attemptSuccesses: 2, attemptFailures: 1, retries: 0, hedges: 0, breaker: 'open', latency: null, windowMs: 60_000 });
      const report = { v: REPORT_VERSION, service: 'ops', instance: 'ops-1', edges: [edge] };
      const posted = await fetch(`${control.url}/v1/reports`, { method: 'POST', body: JSON.stringify(report) });
      expect(posted.status).to.equal(204);
      const opsRow = page.locator('#edges tbody tr', { hasText: 'ops' });
      await opsRow.waitFor();
      expect(await opsRow.locator('td').allTextContents()).to.deep.equal(['ops', 'payments', '66.6%', '0.05', '-', '-', '-', '0', 'open', '1']);
      expect(await page.locator('svg#graph line[data-edge="ops -> payments"]').getAttribute('stroke')).to.equal('#c62828');
      expect(loads).to.deep.equal([]);
      mkdirSync(fileURLToPath(new URL('.', `file://${SCREENSHOT}`)), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(readFileSync(SCREENSHOT).subarray(1, 4).toString()).to.equal('PNG');
      if (process.env.MESHFETCH_UPDATE_SCREENSHOTS !== '1') rmSync(SCREENSHOT);
    } finally {
      await browser.close();
    }
  });
});

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  expect(res.status, `${url}: ${res.status}`).to.equal(200);
  return (await res.json()) as T;
}

/** Waits on the control plane's debug log for reports: `until` resolves once an instance has reported `requests` calls. */
function collectReports(control: TestControlPlane): { until(instance: string, requests: number): Promise<void>; stop(): void } {
  const latest = new Map<string, number>();
  const waiting = new Set<{ instance: string; requests: number; resolve: () => void }>();
  const onLine = (line: { message: string; fields?: { instance?: string; requests?: number } }): void => {
    if (line.message !== 'stats report' || !line.fields?.instance) return;
    latest.set(line.fields.instance, line.fields.requests ?? 0);
    for (const w of waiting) if (w.instance === line.fields.instance && (line.fields.requests ?? 0) >= w.requests) {
      waiting.delete(w);
      w.resolve();
    }
  };
  control.logger.on('line', onLine);
  return {
    until(instance, requests) {
      if ((latest.get(instance) ?? -1) >= requests) return Promise.resolve();
      return new Promise((resolve) => waiting.add({ instance, requests, resolve }));
    },
    stop: () => void control.logger.off('line', onLine),
  };
}

/** A word for sh -c, single-quoted. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}
