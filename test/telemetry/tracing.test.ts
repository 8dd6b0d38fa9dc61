import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { expect } from 'chai';
import { request } from 'undici';
import { defineService, MeshError, shape, withIncomingDeadline } from '../../lib/index.ts';
import { Harness, TRANSPORTS, deadOrigin, nextEvent, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { installOtel, spansNamed } from '../helpers/otel.ts';
import type { Otel, ReadableSpan } from '../helpers/otel.ts';
import { rejection } from '../helpers/rejection.ts';
import { sendJson, startServer } from '../helpers/server.ts';

const ITEM_ROUTE = { routes: [{ name: 'get-item', match: { method: 'GET', path: '/items/:id' } }] };

/** traceparent's span id: the id of the span the server's work should be the child of. */
function parentIdOf(traceparent: unknown): string | undefined {
  return typeof traceparent === 'string' ? traceparent.split('-')[2] : undefined;
}

function byKind(spans: ReadableSpan[], kind: SpanKind): ReadableSpan[] {
  return spans.filter((span) => span.kind === kind);
}

for (const { name, create } of TRANSPORTS) {
  describe(`tracing (${name} transport, real OpenTelemetry SDK)`, function () {
    const h = new Harness(create);
    let otel: Otel;
    beforeEach(() => (otel = installOtel()));
    afterEach(async () => {
      await h.close();
      await otel.uninstall();
    });

    it('one INTERNAL span for the call and one CLIENT span per attempt, named by route, with the HTTP client attributes', async function () {
      const srv = await h.server([{ status: 503 }, { status: 200, body: 'ok' }]);
      const mesh = h.mesh(upPolicy(srv.origin, ITEM_ROUTE));
      const res = await mesh.client('up').fetch('/items/7?token=s3cret&page=2');
      expect(await res.text()).to.equal('ok');

      const spans = otel.spans.getFinishedSpans();
      expect(spans.map((s) => s.name)).to.deep.equal(['GET get-item', 'GET get-item', 'GET get-item']);
      const [call] = byKind(spans, SpanKind.INTERNAL);
      const attempts = byKind(spans, SpanKind.CLIENT);
      expect(attempts).to.have.length(2);
      const port = Number(new URL(srv.origin).port);
      for (const attempt of attempts) {
        expect(attempt.instrumentationScope.name).to.equal('meshfetch');
        expect(attempt.parentSpanContext?.spanId).to.equal(call!.spanContext().spanId);
        expect(attempt.spanContext().traceId).to.equal(call!.spanContext().traceId);
        expect(attempt.attributes).to.include({
          'http.request.method': 'GET',
          'server.address': '127.0.0.1',
          'server.port': port,
          'url.full': `${srv.origin}/items/7?token=REDACTED&page=REDACTED`,
          'meshfetch.service': 'up',
          'meshfetch.route': 'get-item',
        });
      }
      expect(attempts[0]!.attributes).to.include({ 'http.response.status_code': 503, 'error.type': '503' });
      expect(attempts[0]!.attributes).not.to.have.property('http.request.resend_count');
      expect(attempts[0]!.status.code).to.equal(SpanStatusCode.ERROR);
      expect(attempts[1]!.attributes).to.include({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
      expect(attempts[1]!.attributes).not.to.have.property('error.type');
      expect(attempts[1]!.status.code).to.equal(SpanStatusCode.UNSET);

      expect(call!.attributes).to.include({ 'http.request.method': 'GET', 'http.response.status_code': 200, 'meshfetch.attempts': 2, 'meshfetch.route': 'get-item' });
      expect(call!.events.map((e) => [e.name, e.attributes?.['meshfetch.attempt'], e.attributes?.['error.type']])).to.deep.equal([['meshfetch.retry', 2, '503']]);

      // Each attempt carried its own span's context: the server's work is the attempt span's child.
      expect(srv.requests.map((r) => parentIdOf(r.headers.traceparent))).to.deep.equal(attempts.map((a) => a.spanContext().spanId));
      expect(JSON.stringify(spans.map((s) => s.attributes))).not.to.include('s3cret');
    });

    it('a body that fails on the way (a reset after the headers) ends the call and its attempt as the failure the caller saw, not as a 200 success', async function () {
      const srv = await startServer((_req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial', () => res.socket!.destroy());
      });
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null }));
      const events = recordEvents(mesh);
      const callEnded = nextEvent(mesh, 'call'); // after the attempt's: its body listener came first
      const res = await mesh.client('up').fetch('/x');
      const err = (await rejection(res.text())) as MeshError;
      expect(err).to.be.instanceOf(MeshError);
      await callEnded;
      const seen = (e: { status?: number | undefined; outcome: string; errorType?: string | undefined }) => [e.status, e.outcome, e.errorType];
      expect([...events.call.map(seen), ...events.attempt.map(seen)]).to.deep.equal([[200, 'failure', err.code], [200, 'failure', err.code]]);
      const spans = otel.spans.getFinishedSpans();
      expect(spans.map((s) => [s.attributes['http.response.status_code'], s.attributes['error.type'], s.status.code])).to.deep.equal([
        [200, err.code, SpanStatusCode.ERROR],
        [200, err.code, SpanStatusCode.ERROR],
      ]);
      expect(mesh.stats().services.up).to.include({ requests: 1, successes: 0, failures: 1 });
      events.dispose();
    });

    it('a call with no named route is named by its method alone, never by its path', async function () {
      const srv = await h.server();
      const mesh = h.mesh(upPolicy(srv.origin));
      for (const id of [1, 2]) await (await mesh.client('up').fetch(`/users/${id}`)).text();
      expect(otel.spans.getFinishedSpans().map((s) => s.name)).to.deep.equal(['GET', 'GET', 'GET', 'GET']);
    });

    it('a typed route names its spans after the route', async function () {
      const srv = await h.server([], { status: 200, body: '{"id":1}', headers: { 'content-type': 'application/json' } });
      const Items = defineService({ routes: { getItem: { method: 'GET', path: '/items/:id', response: shape<{ id: number }>() } } });
      const mesh = h.mesh(upPolicy(srv.origin));
      expect(await mesh.client('up', Items).getItem({ params: { id: '1' } })).to.deep.equal({ id: 1 });
      expect(spansNamed(otel, 'GET getItem').map((s) => s.kind)).to.have.members([SpanKind.CLIENT, SpanKind.INTERNAL]);
    });

    it('a connection failure: error.type is the MeshError code on every attempt and on the call, and the give-up is an event', async function () {
      const mesh = h.mesh(upPolicy(await deadOrigin(), { retry: { attempts: 2 } }));
      const err = await rejection(mesh.client('up').fetch('/x'));
      expect(err).to.include({ code: 'MESHFETCH_CONNECT' });
      const spans = otel.spans.getFinishedSpans();
      const attempts = byKind(spans, SpanKind.CLIENT);
      expect(attempts.map((a) => a.attributes['error.type'])).to.deep.equal(['MESHFETCH_CONNECT', 'MESHFETCH_CONNECT']);
      expect(attempts.every((a) => a.status.code === SpanStatusCode.ERROR)).to.equal(true);
      const [call] = byKind(spans, SpanKind.INTERNAL);
      expect(call!.attributes).to.include({ 'error.type': 'MESHFETCH_CONNECT', 'meshfetch.attempts': 2 });
      expect(call!.attributes).not.to.have.property('http.response.status_code');
      expect(call!.events.map((e) => e.name)).to.deep.equal(['meshfetch.retry', 'meshfetch.give_up']);
      expect(call!.events[1]!.attributes).to.include({ 'meshfetch.give_up': 'attempts', 'error.type': 'MESHFETCH_CONNECT' });
    });

    it('a hedge and an exhausted budget appear as events on the call span', async function () {
      const srv = await h.server([{ delay: 300, then: { status: 200, body: 'slow' } }], { status: 200, body: 'fast' });
      const mesh = h.mesh(upPolicy(srv.origin, { hedge: { delay: '20ms', max: 1 }, retry: { budget: { minPerSecond: 0.1, ratio: 0 } } }));
      expect(await (await mesh.client('up').fetch('/h')).text()).to.equal('fast');
      const [call] = byKind(otel.spans.getFinishedSpans(), SpanKind.INTERNAL);
      expect(call!.events.map((e) => e.name)).to.include('meshfetch.hedge');
      // Two copies of attempt 1, each its own CLIENT span under the call.
      const attempts = byKind(otel.spans.getFinishedSpans(), SpanKind.CLIENT);
      expect(attempts).to.have.length(2);
      expect(attempts.every((a) => !('http.request.resend_count' in a.attributes))).to.equal(true);
      // The copy that lost the race was cancelled, not failed: error.type says so, the status stays unset.
      const lost = attempts.find((a) => a.attributes['http.response.status_code'] === undefined)!;
      expect(lost.attributes['error.type']).to.equal('HedgeLost');
      expect(lost.status.code).to.equal(SpanStatusCode.UNSET);

      srv.script.push({ delay: 300, then: { status: 200, body: 'slow' } });
      otel.spans.reset();
      expect(await (await mesh.client('up').fetch('/h')).text()).to.equal('slow'); // the budget's one token is spent
      const [second] = byKind(otel.spans.getFinishedSpans(), SpanKind.INTERNAL);
      expect(second!.events.map((e) => e.name)).to.deep.equal(['meshfetch.retry_budget_exhausted']);
    });

    it('the server side continues the trace: withIncomingDeadline extracts the caller context for the calls the handler makes', async function () {
      const downstream = await h.server();
      const b = h.mesh(upPolicy(downstream.origin), { service: 'b' });
      const serverB = await startServer(
        withIncomingDeadline(async (_req, res) => {
          await (await b.client('up').fetch('/from-b')).text();
          sendJson(res, 200, { ok: true });
        }) as (req: IncomingMessage, res: ServerResponse) => Promise<void>,
      );
      h.closeWithServers(() => serverB.close());
      const a = h.mesh({ apiVersion: 'meshfetch/v1', services: { b: { endpoints: [serverB.origin] } } }, { service: 'a' });
      await (await a.client('b').fetch('/to-b')).json();

      const spans = otel.spans.getFinishedSpans();
      const aAttempt = spans.find((s) => s.kind === SpanKind.CLIENT && s.attributes['meshfetch.service'] === 'b')!;
      const bCall = spans.find((s) => s.kind === SpanKind.INTERNAL && s.attributes['meshfetch.service'] === 'up')!;
      expect(bCall.spanContext().traceId).to.equal(aAttempt.spanContext().traceId);
      expect(bCall.parentSpanContext?.spanId).to.equal(aAttempt.spanContext().spanId);
      expect(bCall.parentSpanContext?.isRemote).to.equal(true);
    });

    it('a caller span, when there is one, is the parent of the call span', async function () {
      const srv = await h.server();
      const mesh = h.mesh(upPolicy(srv.origin));
      const { trace } = await import('@opentelemetry/api');
      const parent = trace.getTracer('app').startSpan('handler');
      await context.with(trace.setSpan(context.active(), parent), async () => (await mesh.client('up').fetch('/p')).text());
      parent.end();
      const [call] = byKind(otel.spans.getFinishedSpans(), SpanKind.INTERNAL);
      expect(call!.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
    });
  });
}

describe('tracing with no OpenTelemetry SDK registered', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('sends no trace context and records no span, while mesh.stats() still counts', async function () {
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin));
    await (await mesh.client('up').fetch('/quiet')).text();
    expect(srv.requests[0]!.headers).not.to.have.property('traceparent');
    expect(mesh.stats().services.up).to.include({ requests: 1, attempts: 1, successes: 1 });
  });
});

describe('attempt events', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('number each attempt as it was sent (503, 503, 200 → attempts 1, 2, 3), though the retry layer moves on before a body closes', async function () {
    const srv = await h.server([{ status: 503 }, { status: 503 }], { status: 200, body: 'ok' });
    const mesh = h.mesh(upPolicy(srv.origin, { retry: { attempts: 3, backoff: { base: '1ms', max: '1ms' } } }));
    const events = recordEvents(mesh);
    await (await mesh.client('up').fetch('/items/1')).text();
    expect(srv.requests.map((r) => r.headers['x-meshfetch-attempt'])).to.deep.equal(['1', '2', '3']);
    expect(events.attempt.map((e) => [e.attempt, e.status])).to.deep.equal([[1, 503], [2, 503], [3, 200]]);
    events.dispose();
  });
});

describe('tracing alongside @opentelemetry/instrumentation-undici (registered in process)', function () {
  const h = new Harness();
  let otel: Otel;
  let instrumentation: UndiciInstrumentation | undefined;
  beforeEach(() => (otel = installOtel()));
  afterEach(async () => {
    instrumentation?.disable();
    await h.close();
    await otel.uninstall();
  });

  it('one CLIENT span per attempt, not two; the instrumentation still traces undici calls made outside the mesh', async function () {
    instrumentation = new UndiciInstrumentation();
    const srv = await h.server([{ status: 503 }], { status: 200, body: 'ok' });
    const mesh = h.mesh(upPolicy(srv.origin, ITEM_ROUTE));
    await (await mesh.client('up').fetch('/items/1')).text();
    const clients = byKind(otel.spans.getFinishedSpans(), SpanKind.CLIENT);
    expect(clients.map((s) => [s.instrumentationScope.name, s.name])).to.deep.equal([
      ['meshfetch', 'GET get-item'],
      ['meshfetch', 'GET get-item'],
    ]);
    expect(srv.requests.map((r) => parentIdOf(r.headers.traceparent))).to.deep.equal(clients.map((s) => s.spanContext().spanId));

    const direct = await request(`${srv.origin}/direct`);
    await direct.body.text();
    const undiciSpans = otel.spans.getFinishedSpans().filter((s) => s.instrumentationScope.name.includes('undici'));
    expect(undiciSpans.map((s) => s.name)).to.deep.equal(['GET']);
  });

  it('an instrumentation enabled after the mesh has made calls is seen from the next attempt on: still one CLIENT span per attempt', async function () {
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin, ITEM_ROUTE));
    await (await mesh.client('up').fetch('/items/1')).text();
    instrumentation = new UndiciInstrumentation();
    await (await mesh.client('up').fetch('/items/2')).text();
    const clients = byKind(otel.spans.getFinishedSpans(), SpanKind.CLIENT);
    expect(clients.map((s) => s.instrumentationScope.name)).to.deep.equal(['meshfetch', 'meshfetch']);
    expect(srv.requests.map((r) => parentIdOf(r.headers.traceparent))).to.deep.equal(clients.map((s) => s.spanContext().spanId));
  });

  it("with ignoreRequestHook: isTracingSuppressed, the instrumentation records no duplicate http.client.request.duration for the mesh's attempts", async function () {
    instrumentation = new UndiciInstrumentation({ ignoreRequestHook: () => isTracingSuppressed(context.active()) });
    const srv = await h.server();
    const mesh = h.mesh(upPolicy(srv.origin));
    for (let i = 0; i < 3; i++) await (await mesh.client('up').fetch('/m')).text();
    await (await request(`${srv.origin}/direct`)).body.text();
    // Scope by scope: meshfetch counted its three attempts, the instrumentation only the direct call.
    const scopes = await scopeCounts(otel, 'http.client.request.duration');
    expect(scopes.get('meshfetch')).to.equal(3);
    expect(scopes.get('@opentelemetry/instrumentation-undici')).to.equal(1);
  });
});

/** Histogram counts of one metric, by instrumentation scope. */
async function scopeCounts(otel: Otel, metric: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const scope of await otel.collectScopes()) {
    for (const m of scope.metrics) {
      if (m.descriptor.name !== metric) continue;
      let total = 0;
      for (const point of m.dataPoints) total += (point.value as { count: number }).count;
      counts.set(scope.scope.name, total);
    }
  }
  return counts;
}
