import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import type { Middleware } from '../../lib/pipeline/types.ts';
import { fullJitterBackoff } from '../../lib/resilience/backoff.ts';
import { retryAfterMs } from '../../lib/resilience/retry-after.ts';
import { Harness, nextEvent, recordEvents, upPolicy } from '../helpers/fault-server.ts';

const ALMOST_ONE = 1 - Number.EPSILON / 2; // the largest value Math.random() can return

describe('fullJitterBackoff', function () {
  it('is 0 when the random draw is 0, whatever the retry', function () {
    for (let retry = 1; retry <= 12; retry++) expect(fullJitterBackoff(retry, 25, 250, () => 0)).to.equal(0);
  });

  it('stays below the ceiling base × 2^(retry-1) when the draw is just under 1', function () {
    expect([1, 2, 3, 4].map((retry) => fullJitterBackoff(retry, 25, 250, () => ALMOST_ONE))).to.deep.equal([24, 49, 99, 199]);
  });

  it('grows exponentially and is capped at max', function () {
    const ceilings = [1, 2, 3, 4, 5, 6, 10, 64, 2_000].map((retry) => fullJitterBackoff(retry, 25, 250, () => ALMOST_ONE) + 1);
    expect(ceilings).to.deep.equal([25, 50, 100, 200, 250, 250, 250, 250, 250]);
  });

  it('scales the draw over [0, ceiling): half a draw is half the ceiling', function () {
    expect(fullJitterBackoff(3, 25, 250, () => 0.5)).to.equal(50);
    expect(fullJitterBackoff(9, 25, 250, () => 0.5)).to.equal(125);
  });

  it('with the default Math.random, every wait is a whole number of ms in [0, min(max, base × 2^(retry-1)))', function () {
    for (let i = 0; i < 2_000; i++) {
      const retry = 1 + (i % 8);
      const wait = fullJitterBackoff(retry, 25, 250);
      expect(Number.isInteger(wait)).to.equal(true);
      expect(wait).to.be.at.least(0).and.below(Math.min(250, 25 * 2 ** (retry - 1)));
    }
  });

  it('a zero base means no wait', function () {
    expect(fullJitterBackoff(5, 0, 250, () => ALMOST_ONE)).to.equal(0);
  });
});

describe('retryAfterMs', function () {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delta-seconds', function () {
    expect(retryAfterMs('0', now)).to.equal(0);
    expect(retryAfterMs('1', now)).to.equal(1_000);
    expect(retryAfterMs(' 120 ', now)).to.equal(120_000);
    expect(retryAfterMs(['2', '9'], now)).to.equal(2_000);
  });

  it('reads an HTTP date, never negative', function () {
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).to.equal(5_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now)).to.equal(0);
  });

  it('is undefined when missing or unreadable', function () {
    for (const value of [undefined, '', 'soon', 'Fri, 99 Foo 2026']) expect(retryAfterMs(value, now), String(value)).to.equal(undefined);
  });

  it('never asks for a wait from a malformed number (Date.parse may read it as a past date)', function () {
    for (const value of ['-1', '1.5']) expect(retryAfterMs(value, now) ?? 0, value).to.equal(0);
  });
});

describe('backoff through the mesh (real loopback)', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('announces full-jitter delays per retry with a pinned random: 24 then 49 ms', async function () {
    const srv = await h.server([{ status: 503 }, { status: 503 }, { status: 200 }]);
    const mesh = h.mesh(upPolicy(srv.origin), { random: () => ALMOST_ONE });
    const events = recordEvents(mesh);
    const res = await mesh.client('up').fetch('/x');
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
    expect(events.retry.map((e) => [e.attempt, e.delay])).to.deep.equal([
      [2, 24],
      [3, 49],
    ]);
  });

  it('waits the backoff before the next attempt (fake clock)', async function () {
    const srv = await h.server([{ reset: true }, { reset: true }, { status: 200, body: 'ok' }]);
    const starts: number[] = [];
    const waiters = new Map<number, () => void>();
    const started = (n: number): Promise<void> => new Promise((resolve) => waiters.set(n, resolve));
    const probe: Middleware = (next) => (req, ctx) => {
      starts.push(ctx.attempt);
      waiters.get(ctx.attempt)?.();
      return next(req, ctx);
    };
    const mesh = h.mesh(upPolicy(srv.origin, { retry: { backoff: { base: '1s', max: '1500ms' } } }), {
      random: () => ALMOST_ONE,
      middleware: [{ name: 'probe', after: 'retry', use: probe }],
    });
    const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const firstRetry = nextEvent(mesh, 'retry');
      const second = started(2);
      const pending = mesh.client('up').fetch('/x');
      expect((await firstRetry).delay).to.equal(999);
      await clock.tickAsync(998);
      await flush();
      expect(starts).to.deep.equal([1]);
      await clock.tickAsync(1);
      await second;

      const secondRetry = nextEvent(mesh, 'retry');
      const third = started(3);
      expect((await secondRetry).delay).to.equal(1499); // min(1500, 2000) − 1: capped at max
      await clock.tickAsync(1498);
      await flush();
      expect(starts).to.deep.equal([1, 2]);
      await clock.tickAsync(1);
      await third;
      expect(await (await pending).text()).to.equal('ok');
    } finally {
      clock.uninstall();
    }
  });
});
