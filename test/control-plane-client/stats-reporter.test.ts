import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { StatsReporter } from '../../lib/control-plane-client/stats-reporter.ts';
import { createLogger } from '../../lib/log.ts';
import { createMesh } from '../../lib/index.ts';
import { generateCerts } from '../helpers/certs.ts';
import { RecordingLogger, startTestControlPlane } from '../helpers/control-plane.ts';
import type { MeshStatsSnapshot } from '../../lib/telemetry/stats.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const snapshot = (): MeshStatsSnapshot => ({ caller: 'checkout', window: 60_000, at: Date.now(), services: {} });

describe('StatsReporter', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(() => clock.uninstall());

  /** A replica that keeps each request's lines; `refuse` answers every request 500 at once instead. */
  async function replica(refuse = false): Promise<{ server: TestServer; lines: string[][]; arrivals: EventEmitter }> {
    const lines: string[][] = [];
    const arrivals = new EventEmitter();
    const server = await startServer((req, res) => {
      req.on('error', () => undefined); // cut when the reporter closes
      if (refuse) return void res.writeHead(500).end();
      const mine: string[] = [];
      lines.push(mine);
      let partial = '';
      req.setEncoding('utf8').on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop()!;
        for (const part of parts) {
          mine.push(part);
          arrivals.emit('line');
        }
      });
    });
    return { server, lines, arrivals };
  }
  const untilLines = async (r: { lines: string[][]; arrivals: EventEmitter }, count: number): Promise<void> => {
    while (r.lines.flat().length < count) await once(r.arrivals, 'line');
  };

  it('writes one report per tick, each a line of the one stream it keeps open', async () => {
    const r = await replica();
    const reporter = new StatsReporter({ controlPlanes: [new URL(r.server.origin)], instance: 'i-1', interval: 1_000, snapshot, tls: {}, logger: createLogger('silent') });
    try {
      for (let tick = 1; tick <= 3; tick++) {
        clock.tick(1_000);
        await untilLines(r, tick);
      }
      expect(r.lines.map((l) => l.length)).to.deep.equal([3]);
      expect(r.server.requests.map((req) => `${req.method} ${req.url} ${req.headers['content-type']}`)).to.deep.equal(['POST /v1/reports application/x-ndjson']);
      expect(JSON.parse(r.lines[0]![0]!)).to.deep.equal({ v: 2, service: 'checkout', instance: 'i-1', edges: [] });
    } finally {
      reporter.close();
      await r.server.close();
    }
  });

  it('writes each report to every replica; one that is down or refuses costs the others nothing, and is never sent a report twice', async () => {
    const [good, refusing] = [await replica(), await replica(true)];
    const down = await startServer(() => undefined);
    await down.close(); // a port nobody listens on any more: connection refused
    const logger = new RecordingLogger();
    const reporter = new StatsReporter({
      controlPlanes: [new URL(refusing.server.origin), new URL(down.origin), new URL(good.server.origin)],
      instance: 'i-1',
      interval: 1_000,
      snapshot,
      tls: {},
      logger,
    });
    const dropped = (): unknown[] => logger.lines.filter((l) => l.message === 'stats report dropped').map((l) => l.fields?.controlPlane);
    try {
      for (let round = 1; round <= 2; round++) {
        reporter.send();
        await untilLines(good, round);
        while (dropped().length < 2 * round) await once(logger, 'line');
      }
      expect(good.lines.flat().map((l) => JSON.parse(l).instance)).to.deep.equal(['i-1', 'i-1']);
      expect(dropped().sort()).to.deep.equal([down.origin, down.origin, refusing.server.origin, refusing.server.origin].sort());
      expect(refusing.server.requests).to.have.length(2);
    } finally {
      reporter.close();
      await Promise.all([good.server.close(), refusing.server.close()]);
    }
  });

  it('a snapshot that throws drops that report and sends nothing: no exception escapes the timer', async () => {
    const r = await replica();
    const logger = new RecordingLogger();
    const reporter = new StatsReporter({
      controlPlanes: [new URL(r.server.origin)],
      instance: 'i-1',
      interval: 1_000,
      snapshot: () => {
        throw new Error('stats broke');
      },
      tls: {},
      logger,
    });
    try {
      clock.tick(1_000);
      expect(logger.lines.filter((l) => l.message === 'stats report dropped').map((l) => l.fields?.error)).to.deep.equal(['Error: stats broke']);
      expect(r.server.requests).to.have.length(0);
    } finally {
      reporter.close();
      await r.server.close();
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

describe('StatsReporter over mTLS (a real control plane that requires client certificates)', () => {
  it('streams its reports with its client certificate; a reporter without one has each report refused at the handshake, dropped and logged', async () => {
    const certs = await generateCerts();
    const control = await startTestControlPlane({ apiVersion: 'meshfetch/v1', services: {} }, { logLevel: 'debug', tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } });
    const logger = new RecordingLogger();
    const anonymousLogger = new RecordingLogger();
    const url = [new URL(control.url)];
    // The default 10 s interval, so that three reports are lines of one stream; the timers are fake and never fire: each report is sent by hand.
    const clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval'] });
    const reporter = new StatsReporter({ controlPlanes: url, instance: 'i-1', interval: 10_000, snapshot, tls: { cert: certs.client.cert, key: certs.client.key, ca: certs.ca }, logger });
    const anonymous = new StatsReporter({ controlPlanes: url, instance: 'i-2', interval: 10_000, snapshot, tls: { ca: certs.ca }, logger: anonymousLogger });
    try {
      const taken: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const next = control.logger.next('stats report');
        reporter.send();
        taken.push((await next)?.instance);
      }
      expect(taken).to.deep.equal(['i-1', 'i-1', 'i-1']);
      const dropped = anonymousLogger.next('stats report dropped');
      anonymous.send();
      expect(String((await dropped)?.error)).to.match(/ECONNRESET|socket hang up|alert|certificate/i);
      expect(logger.lines.filter((l) => l.message === 'stats report dropped')).to.deep.equal([]);
    } finally {
      reporter.close();
      anonymous.close();
      clock.uninstall();
      await control.close();
    }
  });

  it('presents the certificate as it is at each new connection: after a rotation, the next stream carries the new one', async () => {
    const [certs, foreign] = await Promise.all([generateCerts(), generateCerts({ caName: 'another CA' })]);
    const control = await startTestControlPlane({ apiVersion: 'meshfetch/v1', services: {} }, { logLevel: 'debug', tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } });
    const logger = new RecordingLogger();
    // Live material, as a mesh's certificate watcher gives it: read at each use, replaced at each rotation.
    const tls = { cert: foreign.client.cert, key: foreign.client.key, ca: certs.ca };
    const reporter = new StatsReporter({ controlPlanes: [new URL(control.url)], instance: 'i-1', interval: 3_600_000, snapshot, tls, logger });
    try {
      const dropped = logger.next('stats report dropped');
      reporter.send();
      expect(String((await dropped)?.error)).to.match(/ECONNRESET|socket hang up|alert|certificate/i);
      Object.assign(tls, { cert: certs.client.cert, key: certs.client.key });
      const taken = control.logger.next('stats report');
      reporter.send();
      expect((await taken)?.instance).to.equal('i-1');
    } finally {
      reporter.close();
      await control.close();
    }
  });
});
