import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { ErrorCode, HttpStatusError, MeshError } from '../../lib/errors.ts';
import type { Middleware } from '../../lib/pipeline/types.ts';
import { Harness, TRANSPORTS, deadOrigin, nextEvent, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';

function expectCode(err: unknown, code: ErrorCode): MeshError {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code, String(err)).to.equal(code);
  return err as MeshError;
}

/** Chunks of `bytes`, as a generator a Readable or a web stream can be made from. */
function* chunksOf(bytes: Buffer, size = 16 * 1024): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function webStream(bytes: Buffer): ReadableStream<Uint8Array> {
  const chunks = chunksOf(bytes);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(new Uint8Array(next.value));
    },
  });
}

for (const { name, create } of TRANSPORTS) {
  describe(`retry (${name} transport, real loopback fault server)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    describe('attempt counts', function () {
      it('503, 503, 200: three requests numbered 1, 2, 3, and the 200 is returned', async function () {
        const srv = await h.server([{ status: 503 }, { status: 503 }, { status: 200, body: 'third time' }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/things');
        expect(res.status).to.equal(200);
        expect(await res.text()).to.equal('third time');
        expect(srv.requests.map((r) => r.attempt)).to.deep.equal([1, 2, 3]);
        expect(srv.requests.map((r) => r.url)).to.deep.equal(['/things', '/things', '/things']);
        expect(events.retry.map((e) => [e.attempt, e.reason])).to.deep.equal([
          [2, 503],
          [3, 503],
        ]);
        expect(events.giveUp).to.deep.equal([]);
      });

      it('attempts: 2 → two requests; fetch() returns the second 503, get() throws HttpStatusError with attempts 2', async function () {
        const fail = { status: 503, body: '{"error":"busy"}', headers: { 'content-type': 'application/json' } };
        const srv = await h.server([fail, fail, fail, fail]);
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { attempts: 2 } }));
        const events = recordEvents(mesh);

        const res = await mesh.client('up').fetch('/a');
        expect(res.status).to.equal(503);
        expect(await res.json()).to.deep.equal({ error: 'busy' });
        expect(srv.requests.length).to.equal(2);
        expect(events.giveUp.map((e) => [e.why, e.attempts, e.reason])).to.deep.equal([['attempts', 2, 503]]);

        const err = await rejection(mesh.client('up').get('/b'));
        expect(err).to.be.instanceOf(HttpStatusError);
        expect((err as HttpStatusError).status).to.equal(503);
        expect((err as HttpStatusError).attempts).to.equal(2);
        expect((err as HttpStatusError).body).to.deep.equal({ error: 'busy' });
        expect(srv.requests.map((r) => [r.url, r.attempt])).to.deep.equal([
          ['/a', 1],
          ['/a', 2],
          ['/b', 1],
          ['/b', 2],
        ]);
      });

      it('does not retry a 500 or a 404 (not in retry.on)', async function () {
        const srv = await h.server([{ status: 500 }, { status: 404 }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const first = await mesh.client('up').fetch('/x');
        expect(first.status).to.equal(500); // a retry would have been answered 404
        await first.arrayBuffer();
        const second = await mesh.client('up').fetch('/y');
        expect(second.status).to.equal(404); // a retry would have been answered 200
        await second.arrayBuffer();
        expect(srv.requests.length).to.equal(2);
        expect(events.retry).to.deep.equal([]);
      });

      it('retries a status only when the policy lists it', async function () {
        const srv = await h.server([{ status: 500 }, { status: 200, body: 'ok' }]);
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { on: [500] } }));
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(200);
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(2);
      });

      it('retry: null switches retries off: one request, whatever the failure', async function () {
        const srv = await h.server([{ status: 503 }, { reset: true }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin, { retry: null }));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        const err = expectCode(await rejection(mesh.client('up').fetch('/y')), ErrorCode.Reset);
        expect(err.attempts).to.equal(1);
        expect(srv.requests.length).to.equal(2);
        expect(events.retry).to.deep.equal([]);
      });
    });

    describe('connection failures', function () {
      it('retries a reset: reset, reset, 200 → three requests and the 200', async function () {
        const srv = await h.server([{ reset: true }, { reset: true }, { status: 200, body: 'ok' }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        expect(await (await mesh.client('up').fetch('/r')).text()).to.equal('ok');
        expect(srv.requests.map((r) => r.attempt)).to.deep.equal([1, 2, 3]);
        for (const event of events.retry) expectCode(event.reason, ErrorCode.Reset);
        expect(events.retry.length).to.equal(2);
      });

      it('retries a connect failure: three refused connections end in MESHFETCH_CONNECT with attempts 3', async function () {
        const mesh = h.mesh(upPolicy(await deadOrigin()));
        const events = recordEvents(mesh);
        const err = expectCode(await rejection(mesh.client('up').fetch('/c')), ErrorCode.Connect);
        expect(err.attempts).to.equal(3);
        expect(events.retry.map((e) => e.attempt)).to.deep.equal([2, 3]);
        for (const event of events.retry) expectCode(event.reason, ErrorCode.Connect);
      });

      it('a retry after a connect failure lands on the next endpoint', async function () {
        const srv = await h.server([{ status: 200, body: 'alive' }]);
        const mesh = h.mesh(upPolicy([await deadOrigin(), srv.origin]));
        expect(await (await mesh.client('up').fetch('/c')).text()).to.equal('alive');
        expect(srv.requests.map((r) => r.attempt)).to.deep.equal([2]);
      });

      it('retries a per-try timeout: a hanging request is abandoned (its socket closed) and the retry answers', async function () {
        const srv = await h.server([{ hang: true }, { status: 200, body: 'second' }]);
        const mesh = h.mesh(upPolicy(srv.origin, { perTryTimeout: '100ms' }));
        const events = recordEvents(mesh);
        expect(await (await mesh.client('up').fetch('/slow')).text()).to.equal('second');
        expect(srv.requests.map((r) => r.attempt)).to.deep.equal([1, 2]);
        const reason = expectCode(events.retry[0]!.reason, ErrorCode.Timeout);
        expect(reason.retryable).to.equal(true);
        await srv.requests[0]!.socketClosed();
      });

      it('the caller gets the last real failure with its attempt count: reset, then a per-try timeout', async function () {
        const srv = await h.server([{ reset: true }, { hang: true }]);
        const mesh = h.mesh(upPolicy(srv.origin, { perTryTimeout: '100ms', retry: { attempts: 2 } }));
        const err = expectCode(await rejection(mesh.client('up').get('/x')), ErrorCode.Timeout);
        expect(err.attempts).to.equal(2);
        expect(err.retryable).to.equal(true); // the per-try timeout, not the call's deadline
        expect(srv.requests.length).to.equal(2);
      });

      it('the caller gets the last answer when the last attempt answered: reset, reset, 503', async function () {
        const srv = await h.server([{ reset: true }, { reset: true }, { status: 503, body: 'still busy' }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const err = await rejection(mesh.client('up').get('/x'));
        expect(err).to.be.instanceOf(HttpStatusError);
        expect((err as HttpStatusError).attempts).to.equal(3);
        expect((err as HttpStatusError).body).to.equal('still busy');
      });

      it('reports giveUp when the last allowed attempt fails with a connection error', async function () {
        const srv = await h.server([], { reset: true });
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { attempts: 2 } }));
        const events = recordEvents(mesh);
        const err = expectCode(await rejection(mesh.client('up').fetch('/x')), ErrorCode.Reset);
        expect(err.attempts).to.equal(2);
        expect(srv.requests.length).to.equal(2);
        expect(events.giveUp.map((e) => [e.why, e.attempts])).to.deep.equal([['attempts', 2]]);
        expectCode(events.giveUp[0]!.reason, ErrorCode.Reset);
      });
    });

    describe('what may be repeated', function () {
      it('a POST without Idempotency-Key is sent exactly once when answered 503 (giveUp: not-idempotent)', async function () {
        const srv = await h.server([], { status: 503 });
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/charges', { method: 'POST', body: 'amount=5' });
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(1);
        expect(srv.requests[0]!.body.toString()).to.equal('amount=5');
        expect(events.giveUp.map((e) => [e.why, e.attempts, e.reason])).to.deep.equal([['not-idempotent', 1, 503]]);
        expect(events.retry).to.deep.equal([]);
      });

      it('a POST without Idempotency-Key is sent exactly once when the connection resets (giveUp: not-idempotent)', async function () {
        const srv = await h.server([], { reset: true });
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const err = expectCode(await rejection(mesh.client('up').post('/charges', { json: { amount: 5 } })), ErrorCode.Reset);
        expect(err.attempts).to.equal(1);
        expect(srv.requests.length).to.equal(1);
        expect(JSON.parse(srv.requests[0]!.body.toString())).to.deep.equal({ amount: 5 });
        expect(events.giveUp.map((e) => [e.why, e.attempts])).to.deep.equal([['not-idempotent', 1]]);
      });

      it('a POST without Idempotency-Key is sent exactly once when it times out', async function () {
        const srv = await h.server([], { hang: true });
        const mesh = h.mesh(upPolicy(srv.origin, { perTryTimeout: '100ms' }));
        const events = recordEvents(mesh);
        expectCode(await rejection(mesh.client('up').post('/charges', { json: { amount: 5 } })), ErrorCode.Timeout);
        expect(srv.requests.length).to.equal(1);
        expect(events.giveUp.map((e) => e.why)).to.deep.equal(['not-idempotent']);
      });

      it('a POST with an Idempotency-Key is retried, the same body and key each time', async function () {
        const srv = await h.server([{ status: 503 }, { reset: true }, { status: 201, body: '{"id":"c1"}' }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const body = await mesh.client('up').post('/charges', { json: { amount: 5 }, headers: { 'Idempotency-Key': 'k1' } });
        expect(body).to.deep.equal({ id: 'c1' });
        expect(srv.requests.map((r) => [r.method, r.attempt, r.headers['idempotency-key'], r.body.toString()])).to.deep.equal([
          ['POST', 1, 'k1', '{"amount":5}'],
          ['POST', 2, 'k1', '{"amount":5}'],
          ['POST', 3, 'k1', '{"amount":5}'],
        ]);
      });

      it('a route with idempotent: true retries a POST', async function () {
        const srv = await h.server([{ status: 503 }, { status: 200, body: 'ok' }]);
        const mesh = h.mesh(
          upPolicy(srv.origin, { routes: [{ name: 'create-charge', match: { method: 'POST', path: '/charges' }, idempotent: true }] }),
        );
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/charges', { method: 'POST', body: 'x' });
        expect(await res.text()).to.equal('ok');
        expect(srv.requests.map((r) => r.body.toString())).to.deep.equal(['x', 'x']);
        expect(events.retry.map((e) => e.route)).to.deep.equal(['create-charge']);
      });

      it('a PATCH is not retried (not in retry.methods); a PUT is', async function () {
        const srv = await h.server([{ status: 503 }, { status: 503 }, { status: 200 }]);
        const mesh = h.mesh(upPolicy(srv.origin));
        const patched = await mesh.client('up').fetch('/p', { method: 'PATCH', body: 'a' });
        expect(patched.status).to.equal(503);
        await patched.arrayBuffer();
        const put = await mesh.client('up').fetch('/p', { method: 'PUT', body: 'b' });
        expect(put.status).to.equal(200);
        await put.arrayBuffer();
        expect(srv.requests.map((r) => [r.method, r.body.toString()])).to.deep.equal([
          ['PATCH', 'a'],
          ['PUT', 'b'],
          ['PUT', 'b'],
        ]);
      });
    });

    describe('request bodies', function () {
      const bytes = randomBytes(200 * 1024);

      it('a Node Readable body is never sent twice: one request with the full bytes (giveUp: body-not-replayable)', async function () {
        const srv = await h.server([{ status: 503 }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/upload', {
          method: 'PUT',
          body: Readable.from(chunksOf(bytes)) as unknown as BodyInit,
        });
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(1);
        expect(srv.requests[0]!.bodyAborted).to.equal(false);
        expect(srv.requests[0]!.body.equals(bytes)).to.equal(true);
        expect(events.giveUp.map((e) => e.why)).to.deep.equal(['body-not-replayable']);
      });

      it('a Node Readable body is never sent twice when the connection resets', async function () {
        const srv = await h.server([{ reset: true }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin));
        const err = expectCode(
          await rejection(
            mesh.client('up').fetch('/upload', {
              method: 'POST',
              headers: { 'idempotency-key': 'k2' },
              body: Readable.from(chunksOf(bytes)) as unknown as BodyInit,
            }),
          ),
          ErrorCode.Reset,
        );
        expect(err.attempts).to.equal(1);
        expect(srv.requests.length).to.equal(1);
        expect(srv.requests[0]!.body.equals(bytes)).to.equal(true);
      });

      it('a web ReadableStream body is never sent twice', async function () {
        const srv = await h.server([{ status: 503 }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/upload', { method: 'PUT', body: webStream(bytes), duplex: 'half' } as RequestInit);
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(1);
        expect(srv.requests[0]!.body.equals(bytes)).to.equal(true);
        expect(events.giveUp.map((e) => e.why)).to.deep.equal(['body-not-replayable']);
      });

      const replayable: [string, () => BodyInit, Buffer][] = [
        ['a string', () => 'héllo wörld ✓ '.repeat(1000), Buffer.from('héllo wörld ✓ '.repeat(1000))],
        ['a Buffer', () => bytes as unknown as BodyInit, bytes],
        ['a Blob', () => new Blob([bytes], { type: 'application/octet-stream' }), bytes],
      ];
      for (const [kind, body, expected] of replayable) {
        it(`${kind} body is replayed byte-exact on every attempt`, async function () {
          const srv = await h.server([{ status: 503 }, { reset: true }, { status: 200, body: 'ok' }]);
          const mesh = h.mesh(upPolicy(srv.origin));
          const res = await mesh.client('up').fetch('/upload', { method: 'PUT', body: body() });
          expect(await res.text()).to.equal('ok');
          expect(srv.requests.length).to.equal(3);
          for (const seen of srv.requests) {
            expect(seen.body.equals(expected), `attempt ${seen.attempt}`).to.equal(true);
            expect(seen.headers['content-length']).to.equal(String(expected.length));
          }
        });
      }
    });

    describe('Retry-After', function () {
      it('waits what Retry-After asks (fake clock): no second attempt before 1000 ms, one right at it', async function () {
        const srv = await h.server([{ status: 503, retryAfter: 1 }, { status: 200, body: 'after' }]);
        const started: number[] = [];
        let secondStarted!: () => void;
        const second = new Promise<void>((resolve) => (secondStarted = resolve));
        const probe: Middleware = (next) => (req, ctx) => {
          started.push(ctx.attempt);
          if (ctx.attempt === 2) secondStarted();
          return next(req, ctx);
        };
        const mesh = h.mesh(upPolicy(srv.origin), { middleware: [{ name: 'probe', after: 'retry', use: probe }] });
        const retry = nextEvent(mesh, 'retry');
        const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
        try {
          const pending = mesh.client('up').fetch('/ra');
          expect((await retry).delay).to.equal(1000);
          await clock.tickAsync(999);
          await new Promise((resolve) => setImmediate(resolve));
          expect(started).to.deep.equal([1]);
          await clock.tickAsync(1);
          await second;
          expect(started).to.deep.equal([1, 2]);
          expect(await (await pending).text()).to.equal('after');
        } finally {
          clock.uninstall();
        }
      });

      it('a Retry-After on a 429 counts too, and the longer of it and the backoff wins', async function () {
        const srv = await h.server([{ status: 429, retryAfter: 0 }, { status: 200 }]);
        // random pinned at 0.999…: the backoff (24 ms) is longer than Retry-After: 0
        const mesh = h.mesh(upPolicy(srv.origin), { random: () => 0.9999 });
        const retry = nextEvent(mesh, 'retry');
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(200);
        await res.arrayBuffer();
        expect((await retry).delay).to.equal(24);
      });

      it('a Retry-After above retryAfter.max is not retried: the 503 is returned (giveUp: retry-after)', async function () {
        const srv = await h.server([{ status: 503, retryAfter: 5 }], { status: 200 });
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { retryAfter: { max: '2s' } } }));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(503);
        expect(res.headers.get('retry-after')).to.equal('5');
        await res.arrayBuffer();
        expect(srv.requests.length).to.equal(1);
        expect(events.giveUp.map((e) => [e.why, e.attempts])).to.deep.equal([['retry-after', 1]]);
      });

      it('retryAfter.honor: false ignores the header and backs off as usual', async function () {
        const srv = await h.server([{ status: 503, retryAfter: 3600 }, { status: 200 }]);
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { retryAfter: { honor: false } } }));
        const events = recordEvents(mesh);
        const res = await mesh.client('up').fetch('/x');
        expect(res.status).to.equal(200);
        await res.arrayBuffer();
        expect(events.retry.map((e) => e.delay)).to.deep.equal([0]);
      });
    });

    describe('events', function () {
      it('on() returns disposers that remove exactly their own listener, even when called again later', async function () {
        const srv = await h.server([], { status: 503 });
        const mesh = h.mesh(upPolicy(srv.origin, { retry: { attempts: 2 } }));
        const heard: string[] = [];
        const offA = mesh.on('retry', () => heard.push('a'));
        const offB = mesh.on('retry', () => heard.push('b'));
        offA();
        await (await mesh.client('up').fetch('/1')).arrayBuffer();
        expect(heard).to.deep.equal(['b']);

        offB();
        offA(); // stale: both already gone
        const offC = mesh.on('retry', () => heard.push('c'));
        offA(); // stale disposers must not remove a listener added since
        offB();
        await (await mesh.client('up').fetch('/2')).arrayBuffer();
        expect(heard).to.deep.equal(['b', 'c']);

        offC();
        await (await mesh.client('up').fetch('/3')).arrayBuffer();
        expect(heard).to.deep.equal(['b', 'c']);
        expect(srv.requests.length).to.equal(6); // the retries happened; only the listeners went away
      });
    });
  });
}
