import { expect } from 'chai';
import { ErrorCode } from '../../lib/errors.ts';
import type { MeshError } from '../../lib/errors.ts';
import type { TransportFactory } from '../../lib/transport/types.ts';
import { Harness, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';

describe('concurrency limit (bulkhead) and rate limit, against a real loopback upstream', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('refuses a call beyond concurrency.max with MESHFETCH_CONCURRENCY_LIMIT, before any request, and frees the slot when the body is done', async () => {
    const srv = await h.server([{ hang: true }]);
    const mesh = h.mesh(upPolicy(srv.origin, { concurrency: { max: 1, queue: 0 } }));
    const events = recordEvents(mesh);
    const controller = new AbortController();
    const first = mesh.client('up').fetch('/slow', { signal: controller.signal });
    await srv.request(1);
    const err = (await rejection(mesh.client('up').fetch('/refused'))) as MeshError;
    expect(err).to.include({ code: ErrorCode.ConcurrencyLimit, retryable: false, service: 'up' });
    expect(events.limited).to.deep.equal([{ service: 'up', route: undefined, limit: 'concurrency' }]);
    expect(srv.requests.length).to.equal(1);
    expect(events.circuit).to.deep.equal([]);
    controller.abort(new Error('done waiting'));
    await rejection(first);
    const res = await mesh.client('up').fetch('/next');
    expect(res.status).to.equal(200);
    const third = (await rejection(mesh.client('up').fetch('/while-body-unread'))) as MeshError;
    expect(third.code).to.equal(ErrorCode.ConcurrencyLimit); // the slot is held until the body is done
    await res.arrayBuffer();
    expect((await mesh.client('up').fetch('/after')).status).to.equal(200);
  });

  it('a middleware inside the bulkhead that throws instead of rejecting does not keep the slot', async () => {
    const srv = await h.server();
    let throwNext = true;
    const mesh = h.mesh(upPolicy(srv.origin, { concurrency: { max: 1, queue: 0 } }), {
      middleware: [{ name: 'throws-once', after: 'concurrency', use: (next) => (req, ctx) => {
        if (!throwNext) return next(req, ctx);
        throwNext = false;
        throw new Error('middleware bug');
      } }],
    });
    expect(((await rejection(mesh.client('up').fetch('/first'))) as Error).message).to.equal('middleware bug');
    const res = await mesh.client('up').fetch('/second');
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
  });

  it('a transport whose request throws (instead of rejecting) does not keep the slot', async () => {
    let requests = 0;
    const throwing: TransportFactory = () => ({
      name: 'throwing',
      request: () => {
        requests += 1;
        throw new Error('transport bug');
      },
      close: async () => {},
    });
    const mesh = h.mesh(upPolicy('http://127.0.0.1:1', { concurrency: { max: 1, queue: 0 }, retry: null }), { transport: throwing });
    for (let i = 0; i < 2; i++) expect(((await rejection(mesh.client('up').fetch('/'))) as Error).message).to.equal('transport bug');
    expect(requests).to.equal(2);
  });

  it('queues up to concurrency.queue calls, in order, each within its own deadline', async () => {
    const srv = await h.server([{ delay: 30, then: { status: 200 } }]);
    const mesh = h.mesh(upPolicy(srv.origin, { concurrency: { max: 1, queue: 1 }, retry: null }));
    const client = mesh.client('up');
    const first = client.fetch('/1');
    const queued = client.fetch('/2');
    const full = (await rejection(client.fetch('/3'))) as MeshError;
    expect(full.code).to.equal(ErrorCode.ConcurrencyLimit);
    await (await first).arrayBuffer();
    expect((await queued).status).to.equal(200);
    expect(srv.requests.map((r) => r.url)).to.deep.equal(['/1', '/2']);

    srv.script.push({ hang: true });
    const holder = new AbortController();
    const holding = client.fetch('/hold', { signal: holder.signal });
    await srv.request(3);
    const timedOut = (await rejection(client.fetch('/waits', { timeout: 50 }))) as MeshError;
    expect(timedOut.code).to.equal(ErrorCode.Timeout); // its deadline passed while it waited
    expect(srv.requests.length).to.equal(3);
    holder.abort(new Error('stop'));
    await rejection(holding);
  });

  it('refuses calls beyond rateLimit with MESHFETCH_RATE_LIMITED, refilling with time (fake Date)', async () => {
    const clock = h.fakeClock(['Date']);
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin, { rateLimit: { rps: 2, burst: 2 }, circuitBreaker: { volumeThreshold: 1 } }));
    const events = recordEvents(mesh);
    const client = mesh.client('up');
    const ok = async () => (await (await client.fetch('/x')).arrayBuffer(), true);
    expect(await ok()).to.equal(true);
    expect(await ok()).to.equal(true);
    const err = (await rejection(client.fetch('/x'))) as MeshError;
    expect(err).to.include({ code: ErrorCode.RateLimited, retryable: false });
    expect(events.limited).to.deep.equal([{ service: 'up', route: undefined, limit: 'rate' }]);
    expect(events.retry).to.deep.equal([]); // not retried
    expect(events.circuit).to.deep.equal([]); // not a breaker failure
    clock.tick(499);
    expect(((await rejection(client.fetch('/x'))) as MeshError).code).to.equal(ErrorCode.RateLimited);
    clock.tick(1);
    expect(await ok()).to.equal(true);
    expect(srv.requests.length).to.equal(3);
  });
  it('follows a new concurrency.max at once: a raised max lets queued calls go, a lowered one holds them back', async () => {
    const srv = await h.server([], { hang: true });
    const policy = (max: number) => upPolicy(srv.origin, { concurrency: { max, queue: 10 }, retry: null, timeout: '60s', perTryTimeout: '60s' });
    const mesh = h.mesh(policy(1));
    const client = mesh.client('up');
    const stop = new AbortController();
    const calls = [client.fetch('/1', { signal: stop.signal }), client.fetch('/2', { signal: stop.signal }), client.fetch('/3', { signal: stop.signal })];
    await srv.request(1);
    mesh.setPolicy(policy(4));
    // The next call finds the raised max: the two queued calls are let go, and it goes too.
    calls.push(client.fetch('/4', { signal: stop.signal }));
    await srv.request(4);
    expect(srv.requests.map((r) => r.url)).to.have.members(['/1', '/2', '/3', '/4']);

    mesh.setPolicy(policy(1));
    srv.script.push({ delay: 50, then: { status: 200 } }, { status: 200 });
    const fifth = client.fetch('/5');
    const sixth = client.fetch('/6');
    stop.abort(new Error('done holding'));
    await Promise.allSettled(calls);
    // Four slots were released under max 1: the queued calls go one at a time.
    await (await fifth).arrayBuffer();
    expect(srv.requests.length).to.equal(5);
    await (await sixth).arrayBuffer();
    expect(srv.requests.map((r) => r.url).slice(4)).to.deep.equal(['/5', '/6']);
    await Promise.allSettled(calls);
  });
});
