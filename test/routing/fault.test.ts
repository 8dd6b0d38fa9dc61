import { expect } from 'chai';
import { Harness, nextEvent, recordEvents } from '../helpers/fault-server.ts';
import { installOtel } from '../helpers/otel.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const V1 = 'meshfetch/v1' as const;

async function drain(res: Response): Promise<Response> {
  await res.arrayBuffer();
  return res;
}

describe('fault injection (real loopback upstream)', function () {
  this.timeout(30_000);
  const h = new Harness();
  afterEach(() => h.close());

  it('aborts 20 % of 2,000 calls (within 4 standard deviations), and no injected abort reaches the upstream', async () => {
    const up = await h.server();
    const mesh = h.mesh(
      { apiVersion: V1, services: { up: { endpoints: [up.origin], retry: null, circuitBreaker: null, fault: { abort: { percent: 20, status: 503 } } } } },
      { random: seededRandom(21) },
    );
    const statuses = new Map<number, number>();
    let marked = 0;
    for (let i = 0; i < 2_000; i++) {
      const res = await drain(await mesh.client('up').fetch('/x'));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.headers.get('x-meshfetch-fault') === 'abort') marked++;
    }
    const aborted = statuses.get(503) ?? 0;
    expect(Math.abs(aborted - 400)).to.be.below(4 * Math.sqrt(2_000 * 0.2 * 0.8));
    expect(marked).to.equal(aborted);
    expect(up.requests.length).to.equal(2_000 - aborted);
    const stats = mesh.stats().services.up!;
    expect(stats.injectedAborts).to.equal(aborted);
    expect(stats.attempts).to.equal(2_000 - aborted); // no attempt span or attempt event for an abort: nothing went out
  });

  it('off unless configured: no fault key, no injected fault', async () => {
    const up = await h.server();
    const mesh = h.mesh({ apiVersion: V1, services: { up: { endpoints: [up.origin] } } }, { random: () => 0 });
    for (let i = 0; i < 50; i++) expect((await drain(await mesh.client('up').fetch('/x'))).status).to.equal(200);
    expect(up.requests.length).to.equal(50);
    expect(mesh.stats().services.up!.injectedAborts).to.equal(0);
  });

  it('an injected 503 is retried like a real one, and the retry may pass', async () => {
    const up = await h.server();
    const draws = [0.1, 0.9]; // abort the first attempt, not the second
    const mesh = h.mesh(
      { apiVersion: V1, services: { up: { endpoints: [up.origin], retry: { attempts: 2, backoff: { base: '1ms', max: '1ms' } }, fault: { abort: { percent: 50, status: 503 } } } } },
      { random: () => draws.shift() ?? 0.5 },
    );
    const res = await drain(await mesh.client('up').fetch('/x'));
    expect(res.status).to.equal(200);
    expect(up.requests.length).to.equal(1);
  });

  it('delays 50 % of calls by the duration; the delayed call still reaches the upstream; a route turns the fault off with null', async () => {
    const up = await h.server();
    const mesh = h.mesh(
      {
        apiVersion: V1,
        services: { up: { endpoints: [up.origin], fault: { delay: { percent: 50, duration: '5ms' } }, routes: [{ name: 'health', match: { path: '/health' }, fault: null }] } },
      },
      { random: seededRandom(8) },
    );
    const events = recordEvents(mesh);
    for (let i = 0; i < 200; i++) await drain(await mesh.client('up').fetch('/x'));
    for (let i = 0; i < 20; i++) await drain(await mesh.client('up').fetch('/health'));
    expect(up.requests.length).to.equal(220);
    expect(events.fault.every((e) => e.kind === 'delay' && e.duration === 5 && e.route === undefined)).to.equal(true);
    expect(Math.abs(events.fault.length - 100)).to.be.below(4 * Math.sqrt(200 * 0.25));
    expect(mesh.stats().services.up!.injectedDelays).to.equal(events.fault.length);
    events.dispose();
  });

  it('marks an injected abort on the call span, and opens no attempt span', async () => {
    const otel = installOtel();
    try {
      const up = await h.server();
      const mesh = h.mesh({ apiVersion: V1, services: { up: { endpoints: [up.origin], retry: null, fault: { abort: { percent: 100, status: 500 } } } } });
      const ended = nextEvent(mesh, 'call');
      expect((await drain(await mesh.client('up').fetch('/x'))).status).to.equal(500);
      await ended;
      const spans = otel.spans.getFinishedSpans();
      expect(spans.map((s) => s.kind)).to.deep.equal([0]);
      expect(spans[0]!.events.map((e) => [e.name, e.attributes?.['meshfetch.fault'], e.attributes?.['http.response.status_code']])).to.deep.equal([
        ['meshfetch.fault_injected', 'abort', 500],
      ]);
      expect(up.requests.length).to.equal(0);
      const faults = (await otel.collect()).get('meshfetch.client.faults_injected')!;
      expect(faults.dataPoints.map((p) => [p.attributes['meshfetch.service'], p.attributes['meshfetch.fault'], p.value])).to.deep.equal([['up', 'abort', 1]]);
    } finally {
      await otel.uninstall();
    }
  });
});
