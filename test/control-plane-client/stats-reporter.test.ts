import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import type { ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import { StatsReporter } from '../../lib/control-plane-client/stats-reporter.ts';
import { createLogger } from '../../lib/log.ts';
import { RecordingLogger } from '../helpers/control-plane.ts';
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
    const reporter = new StatsReporter({ controlPlane: () => new URL(server.origin), instance: 'i-1', interval: 1_000, snapshot, tls: {}, logger });
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

  it('sends nothing on a tick while a report is still in flight', async () => {
    answer = 'hold';
    const reporter = new StatsReporter({ controlPlane: () => new URL(server.origin), instance: 'i-1', interval: 1_000, snapshot, tls: {}, logger: createLogger('silent') });
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
