import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import type { ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import { StatsReporter } from '../../lib/control-plane-client/stats-reporter.ts';
import { createLogger } from '../../lib/log.ts';
import { createMesh } from '../../lib/index.ts';
import { RecordingLogger, startTestControlPlane } from '../helpers/control-plane.ts';
import type { MeshStatsSnapshot } from '../../lib/telemetry/stats.ts';
import { readBody, startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const snapshot = (): MeshStatsSnapshot => ({ caller: 'checkout', window: 60_000, at: Date.now(), services: {} });

describe('StatsReporter', () => {
  let server: TestServer;
  let clock: ReturnType<typeof FakeTimers.install>;
  /** Responses held open, to answer when the test says. */
  const held: ServerResponse[] = [];
  let answer: 'hold' | 500 = 500;
  const bodies: string[] = [];
  const arrivals = new EventEmitter();

  beforeEach(async () => {
    held.length = 0;
    bodies.length = 0;
    server = await startServer(async (req, res) => {
      const body = await readBody(req);
      if (req.url !== '/v1/reports') return void res.writeHead(204).end();
      bodies.push(body);
      arrivals.emit('report');
      if (answer === 'hold') held.push(res);
      else res.writeHead(answer).end();
    });
    clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(async () => {
    clock.uninstall();
    for (const res of held) res.end();
    await server.close();
  });

  it('sends one report per tick and drops a failed one: never a retry', async () => {
    answer = 500;
    const logger = new RecordingLogger();
    const reporter = new StatsReporter({ controlPlanes: [new URL(server.origin)], instance: 'i-1', interval: 1_000, snapshot, tls: {}, logger });
    try {
      for (let tick = 1; tick <= 3; tick++) {
        const dropped = logger.next('stats report dropped');
        clock.tick(1_000);
        expect(String((await dropped)?.error)).to.include('HTTP 500');
        expect(bodies).to.have.length(tick);
      }
      expect(server.requests.map((r) => `${r.method} ${r.url}`)).to.deep.equal(Array(3).fill('POST /v1/reports'));
      expect(JSON.parse(bodies[0]!)).to.deep.equal({ v: 2, service: 'checkout', instance: 'i-1', edges: [] });
    } finally {
      reporter.close();
    }
  });

  it('sends each report to every replica; a replica that is down costs the others nothing', async () => {
    answer = 500;
    const other: string[] = [];
    const replica = await startServer(async (req, res) => {
      other.push(await readBody(req));
      res.writeHead(204).end();
    });
    const down = await startServer(() => undefined);
    await down.close(); // a port nobody listens on any more: connection refused
    const logger = new RecordingLogger();
    const reporter = new StatsReporter({
      controlPlanes: [new URL(server.origin), new URL(down.origin), new URL(replica.origin)],
      instance: 'i-1',
      interval: 1_000,
      snapshot,
      tls: {},
      logger,
    });
    try {
      for (let round = 1; round <= 2; round++) await reporter.send();
      expect(other).to.have.length(2);
      expect(bodies).to.have.length(2);
      expect(bodies.map((b) => JSON.parse(b))).to.deep.equal(other.map((b) => JSON.parse(b)));
      const dropped = logger.lines.filter((l) => l.message === 'stats report dropped').map((l) => l.fields?.controlPlane);
      expect(dropped.sort()).to.deep.equal([down.origin, down.origin, server.origin, server.origin].sort()); // refused, and HTTP 500
    } finally {
      reporter.close();
      await replica.close();
    }
  });

  it('a snapshot that throws drops that report and sends nothing: no rejection escapes the timer', async () => {
    const logger = new RecordingLogger();
    const reporter = new StatsReporter({
      controlPlanes: [new URL(server.origin)],
      instance: 'i-1',
      interval: 1_000,
      snapshot: () => {
        throw new Error('stats broke');
      },
      tls: {},
      logger,
    });
    try {
      await reporter.send();
      expect(logger.lines.filter((l) => l.message === 'stats report dropped').map((l) => l.fields?.error)).to.deep.equal(['Error: stats broke']);
      expect(bodies).to.have.length(0);
    } finally {
      reporter.close();
    }
  });

  it('sends nothing on a tick while a report is still in flight', async () => {
    answer = 'hold';
    const reporter = new StatsReporter({ controlPlanes: [new URL(server.origin)], instance: 'i-1', interval: 1_000, snapshot, tls: {}, logger: createLogger('silent') });
    try {
      const arrived = once(arrivals, 'report');
      clock.tick(1_000);
      await arrived;
      clock.tick(5_000);
      // A round trip on another connection: had a tick sent a report, it would have arrived first.
      expect((await fetch(`${server.origin}/probe`, { method: 'POST', body: 'x' })).status).to.equal(204);
      expect(server.requests.filter((r) => r.url === '/v1/reports')).to.have.length(1);
    } finally {
      reporter.close();
    }
  });
});

describe('reportInterval off (a real control plane)', () => {
  it('a mesh with reports off sends none, while one with reports on, created beside it, reports twice', async () => {
    const control = await startTestControlPlane({ apiVersion: 'meshfetch/v1', services: {} });
    const meshes = [
      createMesh({ service: 'quiet', controlPlane: control.url, reportInterval: 'off', logLevel: 'silent', env: {} }),
      createMesh({ service: 'chatty', controlPlane: control.url, reportInterval: '100ms', logLevel: 'silent', env: {} }),
    ];
    try {
      await Promise.all(meshes.map((m) => m.ready()));
      const reports: string[] = [];
      control.logger.on('line', (line: { message: string; fields?: { service?: string } }) => {
        if (line.message === 'stats report') reports.push(line.fields?.service ?? '?');
      });
      // Two of chatty's intervals: had quiet's timer run, it would have reported in them too.
      while (reports.filter((s) => s === 'chatty').length < 2) await once(control.logger, 'line');
      expect(reports.filter((s) => s !== 'chatty')).to.deep.equal([]);
      expect(meshes[0]!.settings.reportInterval).to.equal(undefined);
    } finally {
      await Promise.all(meshes.map((m) => m.close()));
      await control.close();
    }
  });
});
