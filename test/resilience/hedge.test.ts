import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { RouteDocument, ServiceDocument } from '../../lib/policy/types.ts';
import { Harness, TRANSPORTS, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

/**
 * Stripe's idempotency rule on a real server: a request whose Idempotency-Key is still being handled
 * gets 409; otherwise the charge is made (slowly: 80 ms) and a repeat of a finished key gets the same answer.
 */
async function stripeLike(): Promise<TestServer & { charges: string[]; conflicts: number }> {
  const inFlight = new Set<string>();
  const done = new Map<string, string>();
  const charges: string[] = [];
  let conflicts = 0;
  const srv = await startServer((req, res) => {
    const key = String(req.headers['idempotency-key']);
    const answer = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (inFlight.has(key)) {
      conflicts++;
      return answer(409, '{"error":"idempotency key in use"}');
    }
    if (done.has(key)) return answer(200, done.get(key)!);
    inFlight.add(key);
    setTimeout(() => {
      charges.push(key);
      const body = JSON.stringify({ id: `ch_${charges.length}`, key });
      done.set(key, body);
      inFlight.delete(key);
      answer(200, body);
    }, 80);
  });
  return Object.assign(srv, { charges, get conflicts() { return conflicts; } });
}

/** A service whose GET /search route hedges; `extra` is merged into the service. */
function hedged(hedge: RouteDocument['hedge'], extra: ServiceDocument = {}, routes: RouteDocument[] = []): ServiceDocument {
  return { ...extra, routes: [{ name: 'search', match: { method: 'GET', path: '/search' }, hedge }, ...routes] };
}

for (const { name, create } of TRANSPORTS) {
  describe(`hedging (${name} transport, real loopback)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('after the delay sends one more copy; the second answer wins and the first request is aborted', async function () {
      const srv = await h.server([{ hang: true }, { status: 200, body: 'second' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '50ms' })));
      const events = recordEvents(mesh);
      const res = await mesh.client('up').fetch('/search');
      expect(await res.text()).to.equal('second');
      expect(events.hedge).to.deep.equal([{ service: 'up', route: 'search', attempt: 1, delay: 50 }]);
      expect(srv.requests.length).to.equal(2);
      expect(srv.requests.map((r) => r.attempt)).to.deep.equal([1, 1]); // a hedge is the same attempt
      const hung = srv.requests.find((r) => 'hang' in r.step)!;
      await hung.socketClosed();
      expect(events.retry).to.deep.equal([]);
    });

    it('the first good answer wins: a hedge\'s quick 503 does not beat the first copy\'s later 200', async function () {
      const srv = await h.server([{ delay: 150, then: { status: 200, body: 'good' } }, { status: 503, body: 'busy' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '30ms' }, { retry: { attempts: 1 } })));
      const events = recordEvents(mesh);
      const res = await mesh.client('up').fetch('/search');
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('good');
      expect(events.hedge.length).to.equal(1);
      expect(srv.requests.length).to.equal(2);
    });

    it('when every copy answers with a retryable status, that answer is returned', async function () {
      const srv = await h.server([{ delay: 100, then: { status: 503, body: 'first' } }, { status: 503, body: 'second' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '30ms' }, { retry: { attempts: 1 } })));
      const res = await mesh.client('up').fetch('/search');
      expect(res.status).to.equal(503);
      expect(await res.text()).to.equal('first');
    });

    it('max: 2 sends up to two more copies, and aborts both losers', async function () {
      const srv = await h.server([{ hang: true }, { hang: true }, { status: 200, body: 'third' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '30ms', max: 2 })));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('third');
      expect(events.hedge.map((e) => e.delay)).to.deep.equal([30, 30]);
      expect(srv.requests.length).to.equal(3);
      const hung = srv.requests.filter((r) => 'hang' in r.step);
      expect(hung.length).to.equal(2);
      await Promise.all(hung.map((r) => r.socketClosed()));
    });

    it('does not hedge an answer that came before the delay', async function () {
      const srv = await h.server([{ status: 200, body: 'quick' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '200ms' })));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('quick');
      expect(events.hedge).to.deep.equal([]);
      expect(srv.requests.length).to.equal(1);
    });

    it('hedges draw from the retry budget: with nothing in it no hedge is sent (budgetExhausted)', async function () {
      const srv = await h.server([{ delay: 150, then: { status: 200, body: 'slow' } }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '30ms' }, { retry: { budget: { ratio: 0, minPerSecond: 0 } } })));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('slow');
      expect(srv.requests.length).to.equal(1);
      expect(events.hedge).to.deep.equal([]);
      expect(events.budgetExhausted).to.deep.equal([{ service: 'up', route: 'search', attempt: 1 }]);
    });

    it('a hedge spends the budget: with room for one, the first call hedges and the second does not', async function () {
      const srv = await h.server([{ hang: true }, { status: 200, body: 'hedged' }, { delay: 150, then: { status: 200, body: 'slow' } }]);
      // ratio 0: calls add nothing; a reserve of 0.1/s × 10 s = 1 retry or hedge
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '30ms' }, { retry: { budget: { ratio: 0, minPerSecond: 0.1 } } })));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('hedged');
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('slow');
      expect(srv.requests.length).to.equal(3);
      expect(events.hedge.length).to.equal(1);
      expect(events.budgetExhausted.length).to.equal(1);
    });

    it('delay: p95 does not hedge until 20 answers were seen, then hedges at the observed p95', async function () {
      const srv = await h.server([
        ...Array.from({ length: 19 }, () => ({ status: 200, body: 'fast' })),
        { delay: 500, then: { status: 200, body: 'slow, not hedged' } },
        { hang: true },
        { status: 200, body: 'hedged' },
      ]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: 'p95' })));
      const events = recordEvents(mesh);
      for (let i = 0; i < 19; i++) expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('fast');
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('slow, not hedged'); // 19 samples: no p95 yet
      expect(events.hedge).to.deep.equal([]);
      expect(srv.requests.length).to.equal(20);

      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('hedged');
      expect(events.hedge.length).to.equal(1);
      // The p95 of 19 fast answers and 1 slow one is a fast answer's time: well under the slow one's 500 ms
      // even on a loaded machine.
      expect(events.hedge[0]!.delay).to.be.a('number').and.below(500);
      await srv.request(22); // both copies reached the server (the hedge may even have overtaken the first)
      expect(srv.requests.length).to.equal(22);
      await srv.requests.find((r) => 'hang' in r.step)!.socketClosed();
    });

    it('never hedges a non-idempotent request (a POST without Idempotency-Key)', async function () {
      const srv = await h.server([{ delay: 150, then: { status: 201, body: 'created' } }]);
      const mesh = h.mesh(upPolicy(srv.origin, { routes: [{ name: 'create', match: { method: 'POST', path: '/charges' }, hedge: { delay: '20ms' } }] }));
      const events = recordEvents(mesh);
      const res = await mesh.client('up').fetch('/charges', { method: 'POST', body: 'amount=5' });
      expect(res.status).to.equal(201);
      await res.arrayBuffer();
      expect(srv.requests.length).to.equal(1);
      expect(events.hedge).to.deep.equal([]);
    });

    it('never hedges a POST that carries an Idempotency-Key: against a Stripe-like server the caller gets the charge, not a 409', async function () {
      const stripe = await stripeLike();
      h.closeWithServers(() => stripe.close());
      const mesh = h.mesh(upPolicy(stripe.origin, { routes: [{ name: 'charge', match: { method: 'POST', path: '/charges' }, hedge: { delay: '10ms' } }] }));
      const events = recordEvents(mesh);
      const charge = await mesh.client('up').post('/charges', { json: { amount: 5 }, headers: { 'idempotency-key': 'k1' } });
      expect(charge).to.deep.equal({ id: 'ch_1', key: 'k1' });
      expect(stripe.requests.length).to.equal(1);
      expect(stripe.conflicts).to.equal(0);
      expect(events.hedge).to.deep.equal([]);
    });

    it('hedges a POST on a route marked idempotent: true', async function () {
      const srv = await h.server([{ hang: true }, { status: 200, body: 'second' }]);
      const mesh = h.mesh(upPolicy(srv.origin, { routes: [{ name: 'put-ish', match: { method: 'POST', path: '/upsert' }, idempotent: true, hedge: { delay: '20ms' } }] }));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/upsert', { method: 'POST', body: 'x' })).text()).to.equal('second');
      expect(events.hedge.length).to.equal(1);
      expect(srv.requests.map((r) => r.body.toString())).to.deep.equal(['x', 'x']);
    });

    it('a key still allows sequential retries of a POST: the retry follows the 503, never overlaps it', async function () {
      const srv = await h.server([{ status: 503 }, { status: 201, body: 'created' }]);
      const mesh = h.mesh(upPolicy(srv.origin, { routes: [{ name: 'charge', match: { method: 'POST', path: '/charges' }, hedge: { delay: '10ms' } }] }));
      const events = recordEvents(mesh);
      const res = await mesh.client('up').fetch('/charges', { method: 'POST', body: 'a=1', headers: { 'idempotency-key': 'k2' } });
      expect(res.status).to.equal(201);
      await res.arrayBuffer();
      expect(srv.requests.map((r) => [r.attempt, r.headers['idempotency-key']])).to.deep.equal([[1, 'k2'], [2, 'k2']]);
      expect(events.retry.length).to.equal(1);
      expect(events.hedge).to.deep.equal([]);
    });

    it('never hedges a request whose body is a one-shot stream', async function () {
      const srv = await h.server([{ delay: 150, then: { status: 200, body: 'stored' } }]);
      const mesh = h.mesh(upPolicy(srv.origin, { routes: [{ name: 'store', match: { method: 'PUT', path: '/blob' }, hedge: { delay: '20ms' } }] }));
      const events = recordEvents(mesh);
      const body = Readable.from([Buffer.from('one '), Buffer.from('shot')]) as unknown as BodyInit;
      expect(await (await mesh.client('up').fetch('/blob', { method: 'PUT', body })).text()).to.equal('stored');
      expect(srv.requests.length).to.equal(1);
      expect(srv.requests[0]!.body.toString()).to.equal('one shot');
      expect(events.hedge).to.deep.equal([]);
    });

    it('a hedge goes to another endpoint than the copy it hedges, and the call records where its answer came from', async function () {
      const a = await h.server([{ status: 200 }, { status: 200 }, { status: 200 }, { hang: true }], { status: 200, body: 'hedged to a again' });
      const b = await h.server([{ status: 200, body: 'second' }]);
      // Seen from outside the retry layer: the endpoint of the attempt the call's answer came from.
      const recorded: (string | undefined)[] = [];
      // Seen by the endpoint layer: the endpoint each copy is told to avoid.
      const avoided: (string | undefined)[] = [];
      const mesh = h.mesh(upPolicy([a.origin, b.origin], hedged({ delay: '50ms' })), {
        middleware: [
          { name: 'record-endpoint', before: 'retry', use: (next) => async (req, ctx) => {
            const res = await next(req, ctx);
            recorded.push(ctx.lastEndpoint);
            return res;
          } },
          { name: 'record-avoid', before: 'endpoint', use: (next) => (req, ctx) => (avoided.push(ctx.lastEndpoint), next(req, ctx)) },
        ],
      });
      // Quick answers from a (random is pinned, so peak-EWMA picks a while the costs are even): a now
      // looks far cheaper than b's 30 ms initial estimate, even with the hung copy on it.
      for (let i = 0; i < 3; i++) await (await mesh.client('up').fetch('/search')).arrayBuffer();
      const res = await mesh.client('up').fetch('/search');
      expect(await res.text()).to.equal('second');
      expect(recorded).to.deep.equal([a.origin, a.origin, a.origin, b.origin]);
      expect(avoided.slice(3)).to.deep.equal([undefined, a.origin]); // the pick alone (costs) need not send the hedge elsewhere
      await a.requests[3]!.socketClosed(); // the losing copy was aborted
    });

    it('a hedged copy that a middleware throws on (instead of rejecting) fails that copy only: the first copy\'s answer wins, nothing is thrown from the timer', async function () {
      let answer: (() => void) | undefined;
      const srv = await startServer((_req, res) => void (answer = () => res.end('first'))); // answers once the hedge was sent
      h.closeWithServers(() => srv.close());
      let sent = 0;
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '20ms' })), {
        middleware: [{ name: 'throws-on-the-hedge', after: 'retry', use: (next) => (req, ctx) => {
          if (++sent === 2) throw new Error('middleware bug');
          return next(req, ctx);
        } }],
      });
      const hedges: unknown[] = [];
      mesh.on('hedge', (event) => {
        hedges.push(event);
        setImmediate(() => answer!()); // after the copy was sent (and failed)
      });
      const res = await mesh.client('up').fetch('/search');
      expect(await res.text()).to.equal('first');
      expect([hedges.length, sent, srv.requests.length]).to.deep.equal([1, 2, 1]);
    });

    it('a hedge through a traffic split also goes to another endpoint of the backend than the copy it hedges', async function () {
      const a = await h.server([{ status: 200 }, { status: 200 }, { status: 200 }, { hang: true }], { status: 200, body: 'hedged to a again' });
      const b = await h.server([{ status: 200, body: 'second' }]);
      const avoided: (string | undefined)[] = [];
      const mesh = h.mesh(
        {
          apiVersion: 'meshfetch/v1',
          services: {
            up: { ...hedged({ delay: '50ms' }), endpoints: ['http://127.0.0.1:1'], split: [{ service: 'backend', weight: 1 }] },
            backend: { endpoints: [a.origin, b.origin] },
          },
        },
        { middleware: [{ name: 'record-avoid', before: 'endpoint', use: (next) => (req, ctx) => (avoided.push(ctx.lastEndpoint), next(req, ctx)) }] },
      );
      for (let i = 0; i < 3; i++) await (await mesh.client('up').fetch('/search')).arrayBuffer();
      const res = await mesh.client('up').fetch('/search');
      expect(await res.text()).to.equal('second');
      expect(avoided.slice(3)).to.deep.equal([undefined, a.origin]); // the hedge was told where the hung copy went
      await a.requests[3]!.socketClosed();
    });

    it('a hedged route is still retried when every copy fails', async function () {
      const srv = await h.server([{ reset: true }, { status: 200, body: 'retried' }]);
      const mesh = h.mesh(upPolicy(srv.origin, hedged({ delay: '500ms' })));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/search')).text()).to.equal('retried');
      expect(srv.requests.map((r) => r.attempt)).to.deep.equal([1, 2]);
      expect(events.retry.length).to.equal(1);
      expect(events.hedge).to.deep.equal([]);
    });
  });
}
