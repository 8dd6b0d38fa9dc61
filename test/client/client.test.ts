import { expect } from 'chai';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createMesh, DEFAULT_STACK, defineService, ErrorCode, HttpStatusError, MeshError, shape } from '../../lib/index.ts';
import type { CallContext, MeshOptions, MeshRequest, Mesh, Middleware, PolicyDocument, ServiceDocument } from '../../lib/index.ts';
import { collectGarbage } from '../helpers/gc.ts';
import { rejection } from '../helpers/rejection.ts';
import { readBody, sendJson, startServer } from '../helpers/server.ts';
import type { TestHandler, TestServer } from '../helpers/server.ts';

const V1 = 'meshfetch/v1' as const;

/** What the echo handler saw, sent back as JSON. */
interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

async function echo(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  sendJson(res, 200, { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body } satisfies Echo);
}

/** Resolves when `socket` closes; attach it as soon as the request arrives. */
function closed(socket: Socket): Promise<void> {
  return once(socket, 'close').then(() => undefined);
}


/** A promise and its resolve function, for a server to hold a request until the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('client', () => {
  const servers: TestServer[] = [];
  const meshes: Mesh[] = [];

  async function server(handler: TestHandler = echo): Promise<TestServer> {
    const started = await startServer(handler);
    servers.push(started);
    return started;
  }

  function mesh(services: Record<string, ServiceDocument>, options: Omit<MeshOptions, 'policy'> & { defaults?: PolicyDocument['defaults'] } = {}): Mesh {
    const { defaults, ...rest } = options;
    const created = createMesh({ env: {}, ...rest, policy: { apiVersion: V1, defaults, services } });
    meshes.push(created);
    return created;
  }

  afterEach(async () => {
    // Servers first: destroying their sockets ends any call still in flight, so close() does not wait on it.
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(meshes.splice(0).map((m) => m.close()));
  });

  describe('fetch()', () => {
    it('resolves to a global Response for every status, without throwing on 4xx/5xx', async () => {
      const upstream = await server((req, res) => {
        const status = Number(req.url!.slice(1));
        res.writeHead(status, { 'content-type': 'text/plain', 'x-status': String(status) });
        res.end(`status ${status}`);
      });
      const payments = mesh({ payments: { endpoints: [upstream.origin], retry: null } }).client('payments');
      for (const status of [200, 201, 404, 500, 503]) {
        const res = await payments.fetch(`/${status}`);
        expect(res).to.be.instanceOf(Response);
        expect(res.status).to.equal(status);
        expect(res.ok).to.equal(status < 300);
        expect(res.headers.get('x-status')).to.equal(String(status));
        expect(await res.text()).to.equal(`status ${status}`);
      }
    });

    it('streams the body: the first chunk arrives before the server has finished', async () => {
      const release = gate();
      const upstream = await server(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        await release.promise;
        res.end('second');
      });
      const res = await mesh({ s: { endpoints: [upstream.origin] } }).client('s').fetch('/stream');
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(Buffer.from(first.value!).toString()).to.equal('first;');
      release.open();
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString();
      expect(rest).to.equal('second');
    });

    it('sets Response.url to the service URL for a path, and to the URL given for an absolute URL', async () => {
      const upstream = await server();
      const client = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments');
      const relative = await client.fetch('/charges/1?expand=customer');
      expect(relative.url).to.equal('http://payments/charges/1?expand=customer');
      expect(((await relative.json()) as Echo).url).to.equal('/charges/1?expand=customer');
      const absolute = await client.fetch(`${upstream.origin}/direct?x=1`);
      expect(absolute.url).to.equal(`${upstream.origin}/direct?x=1`);
      expect(((await absolute.json()) as Echo).url).to.equal('/direct?x=1');
    });

    it('gives HEAD responses and 204/304 responses a null body', async () => {
      const upstream = await server((req, res) => {
        if (req.url === '/no-content') res.writeHead(204).end();
        else if (req.url === '/not-modified') res.writeHead(304, { etag: '"v1"' }).end();
        else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
      });
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const head = await client.fetch('/thing', { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(head.body).to.equal(null);
      expect(head.headers.get('content-length')).to.equal('5');
      expect(await head.text()).to.equal('');
      const noContent = await client.fetch('/no-content', { method: 'DELETE' });
      expect(noContent.status).to.equal(204);
      expect(noContent.body).to.equal(null);
      const notModified = await client.fetch('/not-modified');
      expect(notModified.status).to.equal(304);
      expect(notModified.body).to.equal(null);
      // The connection is free again: a further call on it succeeds.
      expect(await (await client.fetch('/thing')).text()).to.equal('hello');
    });

    it('sends headers given in every HeadersInit form', async () => {
      const upstream = await server();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const forms: HeadersInit[] = [
        new Headers({ 'X-One': '1', 'x-two': '2' }),
        [['X-One', '1'], ['x-two', '2']],
        { 'X-One': '1', 'x-two': '2' },
      ];
      for (const headers of forms) {
        const seen = (await (await client.fetch('/h', { headers })).json()) as Echo;
        expect(seen.headers['x-one']).to.equal('1');
        expect(seen.headers['x-two']).to.equal('2');
      }
      const repeated = (await (await client.fetch('/h', { headers: [['x-tag', 'a'], ['x-tag', 'b']] })).json()) as Echo;
      const tags = repeated.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === 'x-tag');
      expect(tags).to.deep.equal(['a', 'b']);
    });

    it('takes method and headers from a Request object', async () => {
      const upstream = await server();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const res = await client.fetch(new Request(`${upstream.origin}/r`, { method: 'PUT', headers: { 'x-from': 'request' }, body: 'payload' }));
      const seen = (await res.json()) as Echo;
      expect(seen).to.include({ method: 'PUT', url: '/r', body: 'payload' });
      expect(seen.headers['x-from']).to.equal('request');
    });

    it('returns response headers, repeated ones included', async () => {
      const upstream = await server((_req, res) => {
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.setHeader('x-multi', ['x', 'y']);
        res.end('ok');
      });
      const res = await mesh({ s: { endpoints: [upstream.origin] } }).client('s').fetch('/');
      expect(res.headers.getSetCookie()).to.deep.equal(['a=1', 'b=2']);
      expect(res.headers.get('x-multi')).to.equal('x, y');
      await res.text();
    });

    it('sends a body with POST, describing a string body as text', async () => {
      const upstream = await server();
      const res = await mesh({ s: { endpoints: [upstream.origin] } }).client('s').fetch('/p', { method: 'post', body: 'héllo' });
      const seen = (await res.json()) as Echo;
      expect(seen).to.include({ method: 'POST', body: 'héllo' });
      expect(seen.headers['content-type']).to.equal('text/plain;charset=UTF-8');
      expect(seen.headers['content-length']).to.equal(String(Buffer.byteLength('héllo')));
    });

    it('rejects a GET or HEAD with a body with a TypeError, as fetch does, sending nothing', async () => {
      const upstream = await server();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      for (const method of ['GET', 'HEAD', 'get']) {
        const err = await rejection(client.fetch('/x', { method, body: 'nope' }));
        expect(err).to.be.instanceOf(TypeError);
        expect((err as Error).message).to.equal(`Request with ${method.toUpperCase()} method cannot have body.`);
      }
      expect(upstream.requests).to.have.length(0);
    });
  });

  describe('aborts and timeouts', () => {
    /**
     * A server that never answers; `arrived` resolves when the first request is in, with a promise
     * of its socket closing (wrapped: a promise resolved with a promise would wait for that one).
     */
    async function holdingServer(): Promise<{ upstream: TestServer; arrived: Promise<{ socketClosed: Promise<void> }> }> {
      let onArrive!: (value: { socketClosed: Promise<void> }) => void;
      const arrived = new Promise<{ socketClosed: Promise<void> }>((resolve) => (onArrive = resolve));
      const upstream = await server((req) => {
        onArrive({ socketClosed: closed(req.socket) });
      });
      return { upstream, arrived };
    }

    it('rejects with the signal reason when the caller aborts, and closes the connection', async () => {
      const { upstream, arrived } = await holdingServer();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      const call = rejection(client.fetch('/slow', { signal: controller.signal }));
      const { socketClosed } = await arrived;
      controller.abort(reason);
      expect(await call).to.equal(reason);
      await socketClosed;
    });

    it('rejects with an AbortError DOMException when aborted without a reason', async () => {
      const { upstream, arrived } = await holdingServer();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const controller = new AbortController();
      const call = rejection(client.get('/slow', { signal: controller.signal }));
      const { socketClosed } = await arrived;
      controller.abort();
      const err = await call;
      expect(err).to.be.instanceOf(DOMException);
      expect((err as DOMException).name).to.equal('AbortError');
      expect(err).to.equal(controller.signal.reason);
      await socketClosed;
    });

    it('rejects at once with the reason of an already-aborted signal, sending nothing', async () => {
      const upstream = await server();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const reason = new Error('already');
      expect(await rejection(client.fetch('/x', { signal: AbortSignal.abort(reason) }))).to.equal(reason);
      expect(await rejection(client.post('/x', { json: {}, signal: AbortSignal.abort(reason) }))).to.equal(reason);
      expect(upstream.requests).to.have.length(0);
    });

    it('rejects with the reason when the caller aborts while the body streams', async () => {
      const release = gate();
      const upstream = await server(async (_req, res) => {
        res.writeHead(200);
        res.write('part');
        await release.promise;
        res.end();
      });
      const controller = new AbortController();
      const res = await mesh({ s: { endpoints: [upstream.origin] } }).client('s').fetch('/', { signal: controller.signal });
      const reason = new Error('stop reading');
      const reader = res.body!.getReader();
      await reader.read();
      const socketClosed = closed(upstream.requests[0]!.socket);
      controller.abort(reason);
      expect(await rejection(reader.read())).to.equal(reason);
      await socketClosed;
      release.open();
    });

    it('times the whole call out at the policy timeout with MESHFETCH_TIMEOUT, closing the connection', async () => {
      const { upstream, arrived } = await holdingServer();
      const client = mesh({ payments: { endpoints: [upstream.origin], timeout: '100ms' } }).client('payments');
      const err = await rejection(client.fetch('/slow'));
      expect(err).to.be.instanceOf(MeshError);
      expect((err as MeshError).code).to.equal(ErrorCode.Timeout);
      expect((err as MeshError).service).to.equal('payments');
      expect((err as MeshError).message).to.equal('call to payments exceeded its 100ms deadline');
      await (await arrived).socketClosed;
    });

    it('times the call out at a per-call timeout shorter than the policy', async () => {
      const { upstream, arrived } = await holdingServer();
      const client = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments');
      const err = await rejection(client.fetch('/slow', { timeout: 80 }));
      expect((err as MeshError).code).to.equal(ErrorCode.Timeout);
      // The deadline counts from when the call started, so the time left when the layer arms its timer
      // may be a little under 80 ms on a busy machine, never over.
      const [, left] = /^call to payments exceeded its (\d+)ms deadline$/.exec((err as MeshError).message) ?? [];
      expect(Number(left)).to.be.within(60, 80);
      await (await arrived).socketClosed;
    });

    it('applies a per-call timeout to the JSON helpers', async () => {
      const { upstream, arrived } = await holdingServer();
      const client = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments');
      const err = await rejection(client.get('/slow', { timeout: 60 }));
      expect((err as MeshError).code).to.equal(ErrorCode.Timeout);
      await (await arrived).socketClosed;
    });

    it('times out a body that is still streaming at the deadline', async () => {
      const release = gate();
      const upstream = await server(async (_req, res) => {
        res.writeHead(200);
        res.write('part');
        await release.promise;
        res.end();
      });
      const res = await mesh({ s: { endpoints: [upstream.origin], timeout: '150ms' } }).client('s').fetch('/');
      const socketClosed = closed(upstream.requests[0]!.socket);
      const err = await rejection(res.text());
      expect((err as MeshError).code).to.equal(ErrorCode.Timeout);
      await socketClosed;
      release.open();
    });
  });

  describe('JSON helpers', () => {
    it('get() sends accept, query and headers and resolves to the parsed body', async () => {
      const upstream = await server();
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      const seen = await client.get<Echo>('/items?fixed=1', {
        query: { q: 'a b&c', page: 2, on: true, tag: ['x', 'y'], skipped: undefined, none: null },
        headers: { 'x-trace': 't1' },
      });
      expect(seen.method).to.equal('GET');
      expect(seen.url).to.equal('/items?fixed=1&q=a%20b%26c&page=2&on=true&tag=x&tag=y');
      expect(seen.headers.accept).to.equal('application/json');
      expect(seen.headers['x-trace']).to.equal('t1');
      expect(seen.body).to.equal('');
    });

    for (const method of ['post', 'put', 'patch', 'delete'] as const) {
      it(`${method}() sends a JSON body with its content type`, async () => {
        const upstream = await server();
        const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
        const seen = await client[method]<Echo>('/items/1', { json: { amount: 5, note: 'ü' }, query: { v: 1 }, headers: new Headers({ 'idempotency-key': 'k1' }) });
        expect(seen.method).to.equal(method.toUpperCase());
        expect(seen.url).to.equal('/items/1?v=1');
        expect(JSON.parse(seen.body)).to.deep.equal({ amount: 5, note: 'ü' });
        expect(seen.headers['content-type']).to.equal('application/json');
        expect(seen.headers['idempotency-key']).to.equal('k1');
      });
    }

    it('keeps a content type and accept the caller set', async () => {
      const upstream = await server();
      const seen = await mesh({ s: { endpoints: [upstream.origin] } })
        .client('s')
        .post<Echo>('/x', { json: [1], headers: { 'content-type': 'application/merge-patch+json', accept: 'application/vnd.x+json' } });
      expect(seen.headers['content-type']).to.equal('application/merge-patch+json');
      expect(seen.headers.accept).to.equal('application/vnd.x+json');
    });

    it('resolves to undefined for an empty 2xx body and for 204', async () => {
      const upstream = await server((req, res) => {
        if (req.url === '/204') res.writeHead(204).end();
        else res.writeHead(200, { 'content-length': '0' }).end();
      });
      const client = mesh({ s: { endpoints: [upstream.origin] } }).client('s');
      expect(await client.delete('/204')).to.equal(undefined);
      expect(await client.get('/empty')).to.equal(undefined);
    });

    it('rejects a 2xx body that is not JSON with MESHFETCH_BODY', async () => {
      const upstream = await server((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      });
      const err = await rejection(mesh({ s: { endpoints: [upstream.origin] } }).client('s').get('/'));
      expect((err as MeshError).code).to.equal(ErrorCode.Body);
    });

    it('rejects a non-2xx answer with HttpStatusError carrying status, parsed JSON body and headers', async () => {
      const upstream = await server((_req, res) => sendJson(res, 402, { error: 'card_declined', charge: 'ch_1' }, { 'x-request-id': 'r1' }));
      const err = await rejection(mesh({ payments: { endpoints: [upstream.origin] } }).client('payments').post('/charges', { json: { amount: 5 } }));
      expect(err).to.be.instanceOf(HttpStatusError);
      expect(err).to.be.instanceOf(MeshError);
      const error = err as HttpStatusError;
      expect(error.code).to.equal(ErrorCode.HttpStatus);
      expect(error.name).to.equal('HttpStatusError');
      expect(error.status).to.equal(402);
      expect(error.body).to.deep.equal({ error: 'card_declined', charge: 'ch_1' });
      expect(error.headers['x-request-id']).to.equal('r1');
      expect(error.service).to.equal('payments');
      expect(error.retryable).to.equal(false);
      expect(error.message).to.equal('HTTP 402 from payments POST /charges');
    });

    it('carries the text body when the error body is not JSON, and marks 429/502/503/504 retryable', async () => {
      const upstream = await server((req, res) => {
        const status = Number(req.url!.slice(1));
        if (status === 500) res.writeHead(500, { 'content-type': 'application/json' }).end('{not json');
        else res.writeHead(status, { 'content-type': 'text/plain' }).end(`down ${status}`);
      });
      const client = mesh({ s: { endpoints: [upstream.origin], retry: null } }).client('s');
      for (const status of [404, 429, 502, 503, 504]) {
        const err = (await rejection(client.get(`/${status}`))) as HttpStatusError;
        expect(err.status).to.equal(status);
        expect(err.body).to.equal(`down ${status}`);
        expect(err.retryable).to.equal(status !== 404);
      }
      const err = (await rejection(client.get('/500'))) as HttpStatusError;
      expect(err.body).to.equal('{not json');
    });
  });

  describe('typed routes', () => {
    interface Charge {
      id: string;
      amount: number;
    }
    const decoded: unknown[] = [];
    const Payments = defineService({
      routes: {
        getCharge: {
          method: 'GET',
          path: '/charges/:id',
          response: (value: unknown): Charge => {
            decoded.push(value);
            const echo = value as Echo;
            return { id: echo.url, amount: echo.body.length };
          },
        },
        createCharge: { method: 'POST', path: '/charges', body: shape<{ amount: number }>(), response: shape<Echo>() },
        listRefunds: { method: 'GET', path: '/charges/:chargeId/refunds/:refundId', query: shape<{ limit: number }>(), response: shape<Echo>() },
        health: { method: 'GET', path: '/health' },
      },
    });

    beforeEach(() => {
      decoded.length = 0;
    });

    it('fills URL-encoded path params and calls the response decoder with the parsed body', async () => {
      const upstream = await server();
      const payments = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments', Payments);
      const charge = await payments.getCharge({ params: { id: 'ch 1/a?b#c' } });
      expect(charge).to.deep.equal({ id: '/charges/ch%201%2Fa%3Fb%23c', amount: 0 });
      expect(decoded).to.have.length(1);
      expect((decoded[0] as Echo).method).to.equal('GET');
    });

    it('sends the body as JSON, the query and the headers, and resolves to the parsed body without a decoder', async () => {
      const upstream = await server();
      const payments = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments', Payments);
      const created = await payments.createCharge({ body: { amount: 5 }, headers: { 'idempotency-key': 'k1' } });
      expect(created.method).to.equal('POST');
      expect(JSON.parse(created.body)).to.deep.equal({ amount: 5 });
      expect(created.headers['content-type']).to.equal('application/json');
      expect(created.headers['idempotency-key']).to.equal('k1');
      const refunds = await payments.listRefunds({ params: { chargeId: 'ch_1', refundId: 7 }, query: { limit: 10 } });
      expect(refunds.url).to.equal('/charges/ch_1/refunds/7?limit=10');
      expect(((await payments.health()) as Echo).url).to.equal('/health');
    });

    it('rejects HttpStatusError naming the route on a non-2xx answer', async () => {
      const upstream = await server((_req, res) => sendJson(res, 404, { error: 'no such charge' }));
      const payments = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments', Payments);
      const err = (await rejection(payments.getCharge({ params: { id: 'x' } }))) as HttpStatusError;
      expect(err.status).to.equal(404);
      expect(err.body).to.deep.equal({ error: 'no such charge' });
      expect(err.route).to.equal('getCharge');
      expect(err.message).to.equal('HTTP 404 from payments GET /charges/x (route getCharge)');
      expect(decoded).to.have.length(0);
    });

    it('names the policy route a JSON helper call matched on its HttpStatusError', async () => {
      const upstream = await server((_req, res) => sendJson(res, 409, { error: 'duplicate' }));
      const created = mesh({
        payments: { endpoints: [upstream.origin], routes: [{ name: 'create-charge', match: { method: 'POST', path: '/charges' } }] },
      });
      const err = (await rejection(created.client('payments').post('/charges', { json: {} }))) as HttpStatusError;
      expect(err.route).to.equal('create-charge');
      expect(err.message).to.equal('HTTP 409 from payments POST /charges (route create-charge)');
    });

    it('fills a param whose name has "-" or "." the way its type names it', async () => {
      const upstream = await server();
      const Files = defineService({ routes: { file: { method: 'GET', path: '/files/:file-id/v/:v.2', response: shape<Echo>() } } });
      const files = mesh({ files: { endpoints: [upstream.origin] } }).client('files', Files);
      const seen = await files.file({ params: { 'file-id': 'f 1', 'v.2': 3 } });
      expect(seen.url).to.equal('/files/f%201/v/3');
    });

    it('rejects a call missing a path param at run time, sending nothing', async () => {
      const upstream = await server();
      const payments = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments', Payments);
      const call = payments.listRefunds as (args?: unknown) => Promise<unknown>;
      for (const args of [undefined, {}, { params: { chargeId: 'c' } }, { params: { chargeId: 'c', refundId: '' } }]) {
        const err = await rejection(call(args));
        expect(err).to.be.instanceOf(TypeError);
        expect((err as Error).message).to.match(/^route listRefunds: path parameter "(chargeId|refundId)" is missing$/);
      }
      expect(upstream.requests).to.have.length(0);
    });

    it('keeps the untyped client methods on a typed client', async () => {
      const upstream = await server();
      const payments = mesh({ payments: { endpoints: [upstream.origin] } }).client('payments', Payments);
      expect(payments.service).to.equal('payments');
      expect((await payments.get<Echo>('/plain')).url).to.equal('/plain');
    });

    it('rejects reserved route names, bad methods and bad paths in defineService', () => {
      const failure = (routes: Record<string, unknown>): MeshError => {
        try {
          defineService({ routes: routes as never });
        } catch (err) {
          expect((err as MeshError).code).to.equal(ErrorCode.Config);
          return err as MeshError;
        }
        return expect.fail('defineService should have thrown');
      };
      for (const name of ['fetch', 'get', 'post', 'put', 'patch', 'delete', 'service', 'then', 'constructor', 'toString', 'hasOwnProperty', '__proto__']) {
        const routes = JSON.parse(`{ "${name}": { "method": "GET", "path": "/" } }`) as Record<string, unknown>;
        expect(failure(routes).message).to.equal(
          `defineService routes.${name}: "${name}" is reserved (a client method, "then", or an Object.prototype member); choose another route name`,
        );
      }
      expect(failure({ r: { method: 'get', path: '/' } }).message).to.equal(
        'defineService routes.r.method: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got "get"',
      );
      expect(failure({ r: { method: 'FETCH', path: '/' } }).message).to.contain('got "FETCH"');
      expect(failure({ r: { path: '/' } }).message).to.contain('got undefined');
      expect(failure({ r: { method: 'GET', path: 'charges' } }).message).to.equal(
        'defineService routes.r.path: expected a path starting with "/", got "charges"',
      );
      expect(failure({ r: { method: 'GET' } }).message).to.equal('defineService routes.r.path: expected a path starting with "/", got undefined');
    });

    it('uses the policy route of the same name as the typed route', async () => {
      // The server holds both calls until the test answers them.
      const held: ServerResponse[] = [];
      let onHeld!: () => void;
      const heldTwo = new Promise<void>((resolve) => (onHeld = resolve));
      const upstream = await server((_req, res) => {
        held.push(res);
        if (held.length === 2) onHeld();
      });
      const Things = defineService({ routes: { quick: { method: 'GET', path: '/things/:id' } } });
      const created = mesh({
        things: {
          endpoints: [upstream.origin],
          timeout: '10s',
          // Matched by name only: its path pattern does not match the URL the typed route calls.
          routes: [{ name: 'quick', match: { path: '/never' }, timeout: '100ms' }],
        },
      });
      const typed = created.client('things', Things);
      const untyped = created.client('things');
      const plain = untyped.get<{ ok: boolean }>('/things/1');
      const quick = rejection(typed.quick({ params: { id: '1' } }));
      await heldTwo;
      const err = (await quick) as MeshError;
      expect(err.code).to.equal(ErrorCode.Timeout);
      expect(err.route).to.equal('quick');
      expect(err.message).to.equal('call to things (quick) exceeded its 100ms deadline');
      // The untyped call to the same URL runs under the service's 10s timeout: it is still waiting.
      sendJson(held[0]!, 200, { ok: true });
      expect(await plain).to.deep.equal({ ok: true });
    });
  });

  describe('policy in force', () => {
    it('setPolicy() moves the next call to the new endpoints; a rejected document leaves the old one in force', async () => {
      const first = await server((_req, res) => sendJson(res, 200, { from: 'first' }));
      const second = await server((_req, res) => sendJson(res, 200, { from: 'second' }));
      const created = mesh({ payments: { endpoints: [first.origin] } });
      const payments = created.client('payments');
      expect(await payments.get('/who')).to.deep.equal({ from: 'first' });

      created.setPolicy({ apiVersion: V1, revision: 'r2', services: { payments: { endpoints: [second.origin] } } });
      expect(created.policyRevision).to.equal('r2');
      expect(await payments.get('/who')).to.deep.equal({ from: 'second' });

      let caught: unknown;
      try {
        created.setPolicy({ apiVersion: V1, revision: 'r3', services: { payments: { endpoints: [first.origin], retry: { atempts: 1 } } } }, 'the control plane');
      } catch (err) {
        caught = err;
      }
      expect((caught as MeshError).code).to.equal(ErrorCode.Config);
      expect((caught as MeshError).message).to.equal('invalid policy from the control plane:\n  services.payments.retry.atempts: unknown key; did you mean "attempts"?');
      expect(created.policyRevision).to.equal('r2');
      expect(await payments.get('/who')).to.deep.equal({ from: 'second' });
      expect(first.requests).to.have.length(1);
      expect(second.requests).to.have.length(2);
    });

    it('setPolicy() changes the timeout of the next call on the same client', async () => {
      const arrived: Promise<void>[] = [];
      const upstream = await server((req) => {
        arrived.push(closed(req.socket));
      });
      const created = mesh({ s: { endpoints: [upstream.origin] } });
      const client = created.client('s');
      created.setPolicy({ apiVersion: V1, services: { s: { endpoints: [upstream.origin], timeout: '50ms' } } });
      const err = (await rejection(client.fetch('/'))) as MeshError;
      expect(err.message).to.equal('call to s exceeded its 50ms deadline');
      await arrived[0];
    });

    it('round-robins over a service’s endpoints when asked to, adding each endpoint’s base path', async () => {
      const a = await server();
      const b = await server();
      const client = mesh({ s: { endpoints: [`${a.origin}/blue/`, b.origin], loadBalancer: { strategy: 'round-robin' } } }).client('s');
      const urls: string[] = [];
      for (let i = 0; i < 4; i++) urls.push((await client.get<Echo>(`/n/${i}`)).url);
      expect(urls).to.deep.equal(['/blue/n/0', '/n/1', '/blue/n/2', '/n/3']);
      expect(a.requests.map((r) => r.url)).to.deep.equal(['/blue/n/0', '/blue/n/2']);
      expect(b.requests.map((r) => r.url)).to.deep.equal(['/n/1', '/n/3']);
    });

    it('calls a baseUrl with its base path', async () => {
      const upstream = await server();
      const seen = await mesh({ s: { baseUrl: `${upstream.origin}/api/v1` } }).client('s').get<Echo>('/items?x=1');
      expect(seen.url).to.equal('/api/v1/items?x=1');
    });

    it('rejects a call to a service without endpoints with MESHFETCH_CONFIG', async () => {
      const err = (await rejection(mesh({}).client('nowhere').get('/'))) as MeshError;
      expect(err.code).to.equal(ErrorCode.Config);
      expect(err.message).to.equal('no endpoints for service "nowhere": the policy in force names no services');
    });
  });

  describe('mesh.fetch()', () => {
    /** A mesh whose middleware records the service and route of every governed call. */
    function recordingMesh(services: Record<string, ServiceDocument>): { mesh: Mesh; seen: { service: string; route: string | undefined; origin: string; path: string }[] } {
      const seen: { service: string; route: string | undefined; origin: string; path: string }[] = [];
      const record: Middleware = (next) => (req: MeshRequest, ctx: CallContext) => {
        seen.push({ service: ctx.service, route: ctx.route, origin: req.origin, path: req.path });
        return next(req, ctx);
      };
      return { mesh: mesh(services, { middleware: [{ name: 'record', use: record }] }), seen };
    }

    it('governs http://<service>/path, calling the service’s endpoint', async () => {
      const upstream = await server();
      const { mesh: created, seen } = recordingMesh({
        payments: { baseUrl: `${upstream.origin}/base`, routes: [{ name: 'get-charge', match: { path: '/charges/:id' } }] },
      });
      const res = await created.fetch('http://payments/charges/1?x=y', { headers: { 'x-a': '1' } });
      expect(res).to.be.instanceOf(Response);
      expect(res.url).to.equal('http://payments/charges/1?x=y');
      const body = (await res.json()) as Echo;
      expect(body.url).to.equal('/base/charges/1?x=y');
      expect(body.headers['x-a']).to.equal('1');
      expect(seen).to.deep.equal([{ service: 'payments', route: 'get-charge', origin: upstream.origin, path: '/base/charges/1?x=y' }]);
    });

    it('governs a Request for http://<service>/path, keeping its method, headers and body', async () => {
      const upstream = await server();
      const { mesh: created, seen } = recordingMesh({ payments: { endpoints: [upstream.origin] } });
      const request = new Request('http://payments/charges', { method: 'POST', headers: { 'x-b': '2' }, body: 'amount=5' });
      const body = (await (await created.fetch(request)).json()) as Echo;
      expect(body).to.include({ method: 'POST', url: '/charges', body: 'amount=5' });
      expect(body.headers['x-b']).to.equal('2');
      expect(seen.map((s) => s.service)).to.deep.equal(['payments']);
    });

    it('governs a URL at a known endpoint origin', async () => {
      const upstream = await server();
      const { mesh: created, seen } = recordingMesh({ orders: { endpoints: [upstream.origin] } });
      const body = (await (await created.fetch(`${upstream.origin}/orders/9`)).json()) as Echo;
      expect(body.url).to.equal('/orders/9');
      expect(seen).to.deep.equal([{ service: 'orders', route: undefined, origin: upstream.origin, path: '/orders/9' }]);
    });

    it('applies the policy of the service a URL is governed by', async () => {
      const arrived: Promise<void>[] = [];
      const upstream = await server((req) => {
        arrived.push(closed(req.socket));
      });
      const created = mesh({ orders: { endpoints: [upstream.origin], timeout: '60ms' } });
      const err = (await rejection(created.fetch(`${upstream.origin}/slow`))) as MeshError;
      expect(err.code).to.equal(ErrorCode.Timeout);
      expect(err.service).to.equal('orders');
      await arrived[0];
    });

    it('passes a URL at an unknown host to the platform fetch, outside the mesh', async () => {
      const known = await server();
      const other = await server();
      const { mesh: created, seen } = recordingMesh({ orders: { endpoints: [known.origin] } });
      const res = await created.fetch(`${other.origin}/elsewhere`, { method: 'POST', body: 'x' });
      expect(res).to.be.instanceOf(Response);
      expect(res.url).to.equal(`${other.origin}/elsewhere`);
      expect(((await res.json()) as Echo)).to.include({ method: 'POST', url: '/elsewhere', body: 'x' });
      expect(seen).to.deep.equal([]);
      expect(known.requests).to.have.length(0);
      expect(other.requests).to.have.length(1);
    });

    it('passes a host:port whose host is named like a service to the platform fetch', async () => {
      const other = await server();
      // A service may be called "127.0.0.1"; only a URL without a port names it.
      const { mesh: created, seen } = recordingMesh({ '127.0.0.1': { endpoints: ['http://10.255.255.1:1'] } });
      const res = await created.fetch(`${other.origin}/p`);
      expect(((await res.json()) as Echo).url).to.equal('/p');
      expect(seen).to.deep.equal([]);
    });
  });

  describe('close()', () => {
    it('rejects every later call with MESHFETCH_CLOSED', async () => {
      const upstream = await server();
      const created = mesh({ payments: { endpoints: [upstream.origin] } });
      const payments = created.client('payments');
      const typed = created.client('payments', defineService({ routes: { one: { method: 'GET', path: '/one' } } }));
      expect(((await payments.get<Echo>('/before')).url)).to.equal('/before');
      await created.close();
      await created.close();
      const calls: Promise<unknown>[] = [
        payments.fetch('/after'),
        payments.get('/after'),
        payments.post('/after', { json: {} }),
        typed.one(),
        created.client('other').get('/'),
        created.fetch('http://payments/after'),
      ];
      for (const call of calls) {
        const err = (await rejection(call)) as MeshError;
        expect(err).to.be.instanceOf(MeshError);
        expect(err.code).to.equal(ErrorCode.Closed);
      }
      expect(upstream.requests).to.have.length(1);
    });
  });

  describe('response body failures', () => {
    /** Sends the headers and half a body, then stalls. */
    const stalling: TestHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
    };

    it('maps a stalled body to MESHFETCH_TIMEOUT on the JSON path and the fetch path', async () => {
      const upstream = await server(stalling);
      const created = mesh({ s: { endpoints: [upstream.origin] } }, { defaults: { bodyTimeout: '100ms', retry: null } });
      const viaJson = await created.client('s').get('/').then(() => undefined, (err: unknown) => err);
      expect(viaJson).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
      const res = await created.client('s').fetch('/');
      const viaFetch = await res.text().then(() => undefined, (err: unknown) => err);
      expect(viaFetch).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
    });

    it('maps a connection dropped mid-body to MESHFETCH_RESET', async () => {
      const upstream = await server((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":', () => res.socket?.destroy());
      });
      const created = mesh({ s: { endpoints: [upstream.origin] } }, { defaults: { retry: null } });
      const res = await created.client('s').fetch('/');
      const err = await res.arrayBuffer().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
    });
  });

  describe('middleware', () => {
    it('runs user middleware before and after the named layers, in stack order', async () => {
      const upstream = await server();
      const events: string[] = [];
      const views: Record<string, { origin: string; deadline: number }> = {};
      const tap = (name: string): Middleware => (next) => async (req, ctx) => {
        events.push(`> ${name}`);
        views[name] = { origin: req.origin, deadline: ctx.deadline };
        const res = await next(req, ctx);
        events.push(`< ${name}`);
        return res;
      };
      const created = mesh(
        { s: { endpoints: [upstream.origin] } },
        {
          middleware: [
            { name: 'innermost', use: tap('innermost') },
            { name: 'after-endpoint', after: 'endpoint', use: tap('after-endpoint') },
            { name: 'before-deadline', before: 'deadline', use: tap('before-deadline') },
            { name: 'after-deadline', after: 'deadline', use: tap('after-deadline') },
            { name: 'before-endpoint', before: 'endpoint', use: tap('before-endpoint') },
          ],
        },
      );
      await created.client('s').get('/');
      expect(events).to.deep.equal([
        '> before-deadline',
        '> after-deadline',
        '> before-endpoint',
        '> after-endpoint',
        '> innermost',
        '< innermost',
        '< after-endpoint',
        '< before-endpoint',
        '< after-deadline',
        '< before-deadline',
      ]);
      // Outside the deadline layer there is no deadline yet; inside the endpoint layer the origin is chosen.
      expect(views['before-deadline']!.deadline).to.equal(Infinity);
      expect(views['after-deadline']!.deadline).to.be.lessThan(Infinity);
      expect(views['before-endpoint']!.origin).to.equal('');
      expect(views['after-endpoint']!.origin).to.equal(upstream.origin);
      expect(views.innermost!.origin).to.equal(upstream.origin);
    });

    it('keeps the given order of several middlewares placed after the same layer', async () => {
      const upstream = await server();
      const seen: string[] = [];
      const tap = (name: string): Middleware => (next) => (req, ctx) => {
        seen.push(name);
        return next(req, ctx);
      };
      const created = mesh(
        { s: { endpoints: [upstream.origin] } },
        {
          middleware: [
            { name: 'first', after: 'deadline', use: tap('first') },
            { name: 'second', after: 'deadline', use: tap('second') },
            { name: 'third', after: 'deadline', use: tap('third') },
          ],
        },
      );
      await created.client('s').get('/');
      expect(seen).to.deep.equal(['first', 'second', 'third']);
    });

    it('lets a middleware answer without calling the network', async () => {
      const created = mesh(
        { s: { endpoints: ['http://127.0.0.1:1'] } },
        {
          middleware: [
            {
              name: 'stub',
              before: 'endpoint',
              use: () => async () => {
                const { Readable } = await import('node:stream');
                return { status: 418, headers: { 'content-type': 'text/plain' }, body: Readable.from([Buffer.from('teapot')]) };
              },
            },
          ],
        },
      );
      const res = await created.client('s').fetch('/');
      expect(res.status).to.equal(418);
      expect(await res.text()).to.equal('teapot');
    });

    it('fails createMesh naming the option when a middleware is misplaced or malformed', () => {
      const use: Middleware = (next) => next;
      const failure = (middleware: unknown[]): string => {
        try {
          const created = createMesh({ env: {}, middleware: middleware as never });
          void created.close();
        } catch (err) {
          expect((err as MeshError).code).to.equal(ErrorCode.Config);
          return (err as MeshError).message;
        }
        return expect.fail('createMesh should have thrown');
      };
      const layers = DEFAULT_STACK.map((layer) => layer.name).join(', ');
      expect(failure([{ name: 'ok', use }, { name: 'm', after: 'no-such-layer', use }])).to.equal(
        `createMesh option middleware[1].after: no layer named "no-such-layer" (layers: ${layers}, ok)`,
      );
      expect(failure([{ name: 'm', before: 'Deadline', use }])).to.equal(
        `createMesh option middleware[0].before: no layer named "Deadline" (layers: ${layers})`,
      );
      expect(failure([{ name: 'deadline', use }])).to.equal('createMesh option middleware[0]: the name "deadline" is taken');
      expect(failure([{ name: 'm', before: 'deadline', after: 'endpoint', use }])).to.equal('createMesh option middleware[0]: give before or after, not both');
      expect(failure([{ name: 'm' }])).to.contain('createMesh option middleware[0]: expected { name: string, use: (next) => handler');
      expect(failure([{ use }])).to.contain('createMesh option middleware[0]: expected');
    });
  });

  describe('an unread response body', () => {
    it('does not hold its connection once the Response is garbage collected', async function () {
      let socketClosed = false;
      const upstream = await server((req, res) => {
        req.socket.once('close', () => (socketClosed = true));
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(16 << 20, 1));
      });
      const client = mesh({ big: { endpoints: [upstream.origin] } }).client('big');
      // The Response is only reachable inside this function; nothing reads its body.
      const status = await (async () => (await client.fetch('/big')).status)();
      expect(status).to.equal(200);
      expect(socketClosed).to.equal(false);
      await collectGarbage(() => socketClosed, 500);
      expect(socketClosed, 'the server should have seen the socket close').to.equal(true);
    });
  });
});
