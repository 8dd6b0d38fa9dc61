import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { Mesh } from '../../lib/mesh.ts';
import { DEADLINE_HEADER, deadlineFromRequest, runWithDeadline, withIncomingDeadline } from '../../lib/resilience/deadline-context.ts';
import { Harness, TRANSPORTS, nextEvent, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';
import type { FaultServer } from '../helpers/fault-server.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const ALMOST_ONE = 1 - Number.EPSILON / 2;

function expectCode(err: unknown, code: ErrorCode): MeshError {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code, String(err)).to.equal(code);
  return err as MeshError;
}

/** Lets pending I/O callbacks and microtasks run (setImmediate is never faked here). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, without handling its rejection for the test. */
function track<T>(promise: Promise<T>): { settled: () => boolean; result: Promise<unknown> } {
  let settled = false;
  const result = promise.then(
    (value) => {
      settled = true;
      return value;
    },
    (err: unknown) => {
      settled = true;
      return err;
    },
  );
  return { settled: () => settled, result };
}

describe('deadlineFromRequest', function () {
  const now = 1_700_000_000_000;
  const req = (value: string | string[] | undefined): IncomingMessage => ({ headers: { [DEADLINE_HEADER]: value } }) as unknown as IncomingMessage;

  it('turns the milliseconds left into an absolute deadline', function () {
    expect(deadlineFromRequest(req('250'), now)).to.equal(now + 250);
    expect(deadlineFromRequest(req('0'), now)).to.equal(now);
    expect(deadlineFromRequest(req(' 42 '), now)).to.equal(now + 42);
    expect(deadlineFromRequest(req(['300', '9']), now)).to.equal(now + 300);
  });

  it('caps what a caller may ask for at 24 h', function () {
    expect(deadlineFromRequest(req('999999999'), now)).to.equal(now + 24 * 3_600_000);
  });

  it('is undefined for a missing or malformed header', function () {
    for (const value of [undefined, '', 'abc', '-5', '1.5', '1e3', '0x10', '12ms', '9999999999', 'Infinity', 'NaN']) {
      expect(deadlineFromRequest(req(value), now), JSON.stringify(value)).to.equal(undefined);
    }
  });
});

for (const { name, create } of TRANSPORTS) {
  describe(`deadlines (${name} transport, real loopback)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('timeout 300ms against a hanging upstream rejects at 300 ms (fake clock) with MESHFETCH_TIMEOUT, whatever perTryTimeout and retry say', async function () {
      const srv = await h.server([], { hang: true });
      const mesh = h.mesh(upPolicy(srv.origin, { timeout: '300ms', perTryTimeout: '10s', retry: { attempts: 10 } }));
      const events = recordEvents(mesh);
      const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const call = track(mesh.client('up').get('/hang'));
        const seen = await srv.request(1);
        expect(seen.deadlineMs).to.be.within(0, 300);
        await clock.tickAsync(299);
        await flush();
        expect(call.settled()).to.equal(false);
        await clock.tickAsync(1);
        const err = expectCode(await call.result, ErrorCode.Timeout);
        expect(err.retryable).to.equal(false);
        expect(err.attempts).to.equal(1);
        await seen.socketClosed();
        expect(srv.requests.length).to.equal(1);
        expect(events.retry).to.deep.equal([]);
      } finally {
        clock.uninstall();
      }
    });

    it('per-try timeouts and retries all end at the call deadline; each attempt carries the time left', async function () {
      const srv = await h.server([], { hang: true });
      const mesh = h.mesh(upPolicy(srv.origin, { timeout: '300ms', perTryTimeout: '100ms', retry: { attempts: 10 } }));
      expectCode(await rejection(mesh.client('up').fetch('/hang')), ErrorCode.Timeout);
      expect(srv.requests.length).to.be.within(1, 3);
      const left = srv.requests.map((r) => r.deadlineMs!);
      for (const ms of left) expect(ms).to.be.within(0, 300);
      for (let i = 1; i < left.length; i++) expect(left[i]).to.be.below(left[i - 1]!);
      await Promise.all(srv.requests.map((r) => r.socketClosed()));
    });

    it("a call's timeout option shortens the policy's", async function () {
      const srv = await h.server([], { hang: true });
      const mesh = h.mesh(upPolicy(srv.origin, { timeout: '60s' }));
      const err = expectCode(await rejection(mesh.client('up').get('/hang', { timeout: 200 })), ErrorCode.Timeout);
      expect(err.retryable).to.equal(false);
      expect(srv.requests[0]!.deadlineMs).to.be.within(0, 200);
      await srv.requests[0]!.socketClosed();
    });

    describe('caller abort', function () {
      it('aborts a call in flight with the signal’s reason and releases the socket', async function () {
        this.timeout(3_000); // the policy's timeout is 60 s: only the abort can end these calls
        const srv = await h.server([], { hang: true });
        const mesh = h.mesh(upPolicy(srv.origin, { timeout: '60s' }));
        const controller = new AbortController();
        const call = mesh.client('up').fetch('/hang', { signal: controller.signal });
        const seen = await srv.request(1);
        const reason = new Error('the user navigated away');
        controller.abort(reason);
        expect(await rejection(call)).to.equal(reason);
        await seen.socketClosed();

        const json = new AbortController();
        const jsonCall = mesh.client('up').get('/hang', { signal: json.signal });
        const second = await srv.request(2);
        json.abort();
        const err = await rejection(jsonCall);
        expect(err).to.be.instanceOf(DOMException);
        expect((err as DOMException).name).to.equal('AbortError');
        await second.socketClosed();
      });

      it('aborts during a backoff wait at once, without another attempt', async function () {
        this.timeout(3_000);
        const srv = await h.server([{ status: 503, retryAfter: 20 }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin, { timeout: '60s' }));
        const controller = new AbortController();
        const retry = nextEvent(mesh, 'retry');
        const call = mesh.client('up').fetch('/x', { signal: controller.signal });
        expect((await retry).delay).to.equal(20_000);
        const reason = new Error('stop waiting');
        controller.abort(reason);
        expect(await rejection(call)).to.equal(reason);
        expect(srv.requests.length).to.equal(1);
      });

      it('an already aborted signal sends nothing', async function () {
        const srv = await h.server();
        const mesh = h.mesh(upPolicy(srv.origin));
        const reason = new Error('too late');
        expect(await rejection(mesh.client('up').fetch('/x', { signal: AbortSignal.abort(reason) }))).to.equal(reason);
        expect(await rejection(mesh.client('up').get('/x', { signal: AbortSignal.abort(reason) }))).to.equal(reason);
        expect(srv.requests.length).to.equal(0);
      });
    });

    describe('no retry that cannot fit before the deadline', function () {
      it('a Retry-After longer than the time left is not waited for (giveUp: deadline)', async function () {
        const srv = await h.server([{ status: 503, retryAfter: 2 }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin, { timeout: '1s' }));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(1);
        expect(events.giveUp.map((e) => [e.why, e.attempts, e.reason])).to.deep.equal([['deadline', 1, 503]]);
      });

      it('a backoff longer than the time left is not waited for: the reset is returned (giveUp: deadline)', async function () {
        const srv = await h.server([{ reset: true }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin, { timeout: '1s', retry: { backoff: { base: '5s', max: '5s' } } }), { random: () => ALMOST_ONE });
        const events = recordEvents(mesh);
        const err = expectCode(await rejection(mesh.client('up').get('/x')), ErrorCode.Reset);
        expect(err.attempts).to.equal(1);
        expect(srv.requests.length).to.equal(1);
        expect(events.giveUp.map((e) => e.why)).to.deep.equal(['deadline']);
      });
    });

    describe('propagation across two real hops: client → A (withIncomingDeadline) → B', function () {
      interface Hops {
        a: TestServer;
        b: FaultServer;
        client: Mesh;
        /** What A saw: the deadline header, and how its own call to B ended. */
        aHeaders: Promise<string | undefined>;
        aDownstream: Promise<unknown>;
      }

      /**
       * With `answer504`, A answers 504 when its call to B fails; without it A stays silent, so that
       * only the client's own deadline or abort can end the client's call (A's deadline, propagated
       * from the client's, can run out in the same millisecond and would race it).
       */
      async function hops(clientTimeout: string, answer504 = false): Promise<Hops> {
        const b = await h.server([], { hang: true });
        const meshA = h.mesh(upPolicy(b.origin, { timeout: '60s' }));
        let saw!: (value: string | undefined) => void;
        let ended!: (value: unknown) => void;
        const aHeaders = new Promise<string | undefined>((resolve) => (saw = resolve));
        const aDownstream = new Promise<unknown>((resolve) => (ended = resolve));
        const handler = withIncomingDeadline(async (req, res) => {
          saw(req.headers[DEADLINE_HEADER] as string | undefined);
          try {
            const body = await meshA.client('up').get('/from-a');
            ended(body);
            res.end(JSON.stringify(body));
          } catch (err) {
            ended(err);
            if (answer504 && !res.destroyed) {
              res.writeHead(504, { 'content-type': 'text/plain' });
              res.end((err as MeshError).code ?? 'error');
            }
          }
        });
        const a = await startServer((req, res) => void handler(req, res));
        h.closeWithServers(() => a.close());
        const client = h.mesh({ apiVersion: 'meshfetch/v1', services: { a: { endpoints: [a.origin], timeout: clientTimeout as '1s' } } });
        return { a, b, client, aHeaders, aDownstream };
      }

      it("the client's timeout reaches B as a deadline no larger than it, and B's request is aborted when the client gives up", async function () {
        const { b, client, aHeaders, aDownstream } = await hops('300ms');
        const err = expectCode(await rejection(client.client('a').get('/to-a')), ErrorCode.Timeout);
        expect(err.retryable).to.equal(false);
        expect(Number(await aHeaders)).to.be.within(0, 300);
        const atB = await b.request(1);
        expect(atB.deadlineMs).to.be.within(0, 300);
        expect(atB.deadlineMs).to.be.at.most(Number(await aHeaders));
        await atB.socketClosed();
        expectCode(await aDownstream, ErrorCode.Timeout);
        expect(b.requests.length).to.equal(1);
      });

      it("a caller that goes away (abort, no short deadline) aborts A's call to B", async function () {
        this.timeout(3_000);
        const { b, client, aDownstream } = await hops('60s');
        const controller = new AbortController();
        const call = client.client('a').fetch('/to-a', { signal: controller.signal });
        const atB = await b.request(1);
        expect(atB.deadlineMs).to.be.within(50_000, 60_000);
        const reason = new Error('client gone');
        controller.abort(reason);
        expect(await rejection(call)).to.equal(reason);
        await atB.socketClosed(); // A noticed its caller leave and aborted its own call
        const downstream = expectCode(await aDownstream, ErrorCode.Timeout);
        expect(downstream.message).to.contain('closed by its caller');
      });

      it("A's call to B ends by the deadline A received, even while A's caller keeps waiting", async function () {
        this.timeout(3_000);
        const { a, b, aDownstream } = await hops('60s', true);
        const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest(`${a.origin}/to-a`, { agent: false, headers: { [DEADLINE_HEADER]: '200' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
        const atB = await b.request(1);
        expect(atB.deadlineMs).to.be.within(0, 200);
        expect(await answer).to.deep.equal({ status: 504, body: ErrorCode.Timeout });
        await atB.socketClosed();
        expectCode(await aDownstream, ErrorCode.Timeout);
      });

      it('runWithDeadline bounds the calls made inside it', async function () {
        const b = await h.server([], { hang: true });
        const mesh = h.mesh(upPolicy(b.origin, { timeout: '60s' }));
        const call = runWithDeadline({ deadline: Date.now() + 150, signal: undefined }, () => mesh.client('up').get('/x'));
        expectCode(await rejection(call), ErrorCode.Timeout);
        expect(b.requests[0]!.deadlineMs).to.be.within(0, 150);
        await b.requests[0]!.socketClosed();
      });

      it('a deadline that has already passed fails the call without sending it', async function () {
        const b = await h.server([], { hang: true });
        const sent: number[] = [];
        const mesh = h.mesh(upPolicy(b.origin, { timeout: '60s' }), {
          middleware: [{ name: 'probe', after: 'deadline', use: (next) => (req, ctx) => (sent.push(ctx.attempt), next(req, ctx)) }],
        });
        for (const left of [-1, 0]) {
          const call = runWithDeadline({ deadline: Date.now() + left, signal: undefined }, () => mesh.client('up').get('/x'));
          expectCode(await rejection(call), ErrorCode.Timeout);
        }
        expect(sent).to.deep.equal([]); // nothing went past the deadline layer
      });
    });
  });
}
