import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { CallContext, HeaderRecord, MeshRequest, MeshResponse } from '../../lib/pipeline/types.ts';
import type { CallPolicy } from '../../lib/policy/types.ts';
import { transportError } from '../../lib/transport/errors.ts';
import { toRequestBody } from '../../lib/transport/request-body.ts';
import type { Transport, TransportFactory, TransportSettings } from '../../lib/transport/types.ts';
import { fixedTls, generateCerts } from '../helpers/certs.ts';
import type { TestCerts } from '../helpers/certs.ts';
import { testContext } from '../helpers/context.ts';
import { startServer } from '../helpers/server.ts';
import type { TestHandler, TestServer } from '../helpers/server.ts';
import { rejection } from '../helpers/rejection.ts';
import { describeHostileUpstreams } from './hostile-suite.ts';
import { describeConnectionPool } from './pool-suite.ts';
import type { PooledFactory } from './pool-suite.ts';

/** Reads a whole stream as bytes. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}


/** Resolves once the socket is closed (at once when it already is). */
function closed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  // Not events.once: that rejects on 'error', and a socket the client reset reports ECONNRESET first.
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

function expectMeshError(err: unknown, code: ErrorCode): void {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code, String(err)).to.equal(code);
}

/** A deferred: a promise with its resolve function, to wait on events instead of time. */
function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/**
 * The one transport suite: every transport must pass it, against real loopback servers. Nothing
 * waits on time: servers that hang simply never answer (and are closed after each test), and every
 * "it happened" is an event.
 */
export function describeTransport(name: string, factory: TransportFactory, pooled: PooledFactory): void {
  describe(`transport: ${name}`, function () {
    const servers: TestServer[] = [];
    const transports: Transport[] = [];

    function transport(settings: TransportSettings = {}): Transport {
      const created = factory(settings);
      transports.push(created);
      return created;
    }

    async function serve(handler: TestHandler, server?: Parameters<typeof startServer>[1]): Promise<TestServer> {
      const started = await startServer(handler, server);
      servers.push(started);
      return started;
    }

    /** A server that records each request with its whole body, then answers `status` with the body echoed. */
    async function echoServer(seen: SeenRequest[]): Promise<TestServer> {
      return serve(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = Buffer.concat(chunks);
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      });
    }

    function call(t: Transport, req: Partial<MeshRequest> & { origin: string }, ctx: CallContext = testContext()): Promise<MeshResponse> {
      return t.request({ method: 'GET', path: '/', headers: {}, body: null, ...req }, ctx);
    }

    function ctxWith(policy: Partial<CallPolicy>, signal?: AbortSignal): CallContext {
      // testContext merges a partial policy over the defaults (its parameter type asks for a whole one).
      return testContext({ policy: policy as CallPolicy, signal });
    }

    afterEach(async function () {
      // Servers first: that also ends any body a failing test left unread, so close() cannot hang.
      await Promise.all(servers.splice(0).map((s) => s.close()));
      await Promise.all(transports.splice(0).map((t) => t.close()));
    });

    describe('requests and responses', function () {
      it('sends each method, the path and the headers to the server', async function () {
        const srv = await serve((req, res) => {
          res.writeHead(200, { 'x-method': req.method!, 'x-url': req.url! });
          res.end(req.method === 'HEAD' ? undefined : `${req.method} ok`);
        });
        const t = transport();
        for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
          const res = await call(t, {
            origin: srv.origin,
            method,
            path: '/a/b?x=1&y=%20z',
            headers: { 'x-trace': 'abc', 'x-multi': ['one', 'two'] },
          });
          expect(res.status).to.equal(200);
          expect(res.headers['x-method']).to.equal(method);
          expect(res.headers['x-url']).to.equal('/a/b?x=1&y=%20z');
          expect((await readAll(res.body)).toString()).to.equal(method === 'HEAD' ? '' : `${method} ok`);
        }
        expect(srv.requests.map((r) => r.method)).to.deep.equal(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
        for (const req of srv.requests) {
          expect(req.headers['x-trace']).to.equal('abc');
          expect(req.headersDistinct['x-multi']).to.deep.equal(['one', 'two']);
        }
      });

      it('hands up status and headers (repeated ones as arrays) and never throws on 4xx/5xx', async function () {
        const srv = await serve((req, res) => {
          const status = Number(req.url!.slice(1));
          res.writeHead(status, [
            ['x-answer', String(status)],
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
            ['content-type', 'text/plain'],
          ]);
          res.end(`status ${status}`);
        });
        const t = transport();
        for (const status of [200, 201, 404, 500, 503]) {
          const res = await call(t, { origin: srv.origin, path: `/${status}` });
          expect(res.status).to.equal(status);
          expect(res.headers['x-answer']).to.equal(String(status));
          expect(res.headers['set-cookie']).to.deep.equal(['a=1', 'b=2']);
          expect(res.headers['content-type']).to.equal('text/plain');
          expect((await readAll(res.body)).toString()).to.equal(`status ${status}`);
        }
        expect(srv.requests).to.have.length(5); // nothing retried
      });

      it('does not follow redirects', async function () {
        const srv = await serve((req, res) => {
          res.writeHead(req.url === '/from' ? 302 : 200, { location: '/to' });
          res.end('here');
        });
        const res = await call(transport(), { origin: srv.origin, path: '/from' });
        expect(res.status).to.equal(302);
        expect(res.headers.location).to.equal('/to');
        expect((await readAll(res.body)).toString()).to.equal('here');
        expect(srv.requests.map((r) => r.url)).to.deep.equal(['/from']);
      });
    });

    describe('request bodies', function () {
      const text = 'héllo wörld ✓ \u{1F600}';
      const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) & 0xff));

      /** Each body kind of toRequestBody, with the bytes the server must receive and the headers it gets. */
      const kinds: {
        kind: string;
        make: () => unknown;
        expected: Buffer;
        type: string | undefined;
        length: boolean;
      }[] = [
        { kind: 'string', make: () => text, expected: Buffer.from(text), type: 'text/plain;charset=UTF-8', length: true },
        { kind: 'Buffer', make: () => Buffer.from(bytes), expected: bytes, type: undefined, length: true },
        { kind: 'Uint8Array', make: () => new Uint8Array(bytes), expected: bytes, type: undefined, length: true },
        { kind: 'ArrayBuffer', make: () => new Uint8Array(bytes).buffer, expected: bytes, type: undefined, length: true },
        {
          kind: 'URLSearchParams',
          make: () => new URLSearchParams({ a: '1 2', b: 'ä&=' }),
          expected: Buffer.from('a=1+2&b=%C3%A4%26%3D'),
          type: 'application/x-www-form-urlencoded;charset=UTF-8',
          length: true,
        },
        {
          kind: 'Blob',
          make: () => new Blob([text, bytes], { type: 'application/x-test' }),
          expected: Buffer.concat([Buffer.from(text), bytes]),
          type: 'application/x-test',
          length: true,
        },
        {
          kind: 'web ReadableStream',
          make: () => {
            const chunks = [Buffer.from(text), bytes.subarray(0, 1000), bytes.subarray(1000)];
            return new ReadableStream<Uint8Array>({
              pull(controller) {
                const next = chunks.shift();
                if (next) controller.enqueue(new Uint8Array(next));
                else controller.close();
              },
            });
          },
          expected: Buffer.concat([Buffer.from(text), bytes]),
          type: undefined,
          length: false,
        },
        {
          kind: 'Node Readable',
          make: () => Readable.from([Buffer.from(text), bytes]),
          expected: Buffer.concat([Buffer.from(text), bytes]),
          type: undefined,
          length: false,
        },
        {
          kind: 'async iterable',
          make: () =>
            (async function* () {
              yield Buffer.from(text);
              yield new Uint8Array(bytes);
            })(),
          expected: Buffer.concat([Buffer.from(text), bytes]),
          type: undefined,
          length: false,
        },
      ];

      for (const { kind, make, expected, type, length } of kinds) {
        it(`sends a ${kind} body byte-exact`, async function () {
          const seen: SeenRequest[] = [];
          const srv = await echoServer(seen);
          const headers: HeaderRecord = {};
          const body = toRequestBody(make(), headers);
          const res = await call(transport(), { origin: srv.origin, method: 'POST', path: '/upload', headers, body });
          expect(res.status).to.equal(200);
          expect((await readAll(res.body)).equals(expected)).to.equal(true);
          expect(seen).to.have.length(1);
          expect(seen[0]!.body.equals(expected), `${kind}: ${seen[0]!.body.length} bytes vs ${expected.length}`).to.equal(true);
          expect(seen[0]!.headers['content-type']).to.equal(type);
          if (length) expect(seen[0]!.headers['content-length']).to.equal(String(expected.length));
          else expect(seen[0]!.headers['transfer-encoding']).to.equal('chunked');
        });
      }

      it('sends a FormData body (fields and files) that the server parses back', async function () {
        const seen: SeenRequest[] = [];
        const srv = await echoServer(seen);
        const form = new FormData();
        form.append('name', 'ä "quoted"\nline');
        form.append('file', new File([bytes], 'data.bin', { type: 'application/x-data' }));
        form.append('note', new Blob(['plain blob']));
        const headers: HeaderRecord = {};
        const body = toRequestBody(form, headers);
        const res = await call(transport(), { origin: srv.origin, method: 'POST', headers, body });
        await readAll(res.body);
        const received = seen[0]!;
        expect(received.headers['content-type']).to.match(/^multipart\/form-data; boundary=/);
        expect(received.headers['content-length']).to.equal(String(received.body.length));
        const parsed = await new Response(new Uint8Array(received.body), {
          headers: { 'content-type': received.headers['content-type']! },
        }).formData();
        expect(parsed.get('name')).to.equal('ä "quoted"\r\nline');
        const file = parsed.get('file') as File;
        expect(file.name).to.equal('data.bin');
        expect(file.type).to.equal('application/x-data');
        expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).to.equal(true);
        expect(await (parsed.get('note') as File).text()).to.equal('plain blob');
      });

      it('sends a replayable body (Blob, FormData) again, byte-identical, on a second attempt', async function () {
        const seen: SeenRequest[] = [];
        const srv = await echoServer(seen);
        const t = transport();
        const form = new FormData();
        form.append('a', 'b');
        form.append('f', new Blob([bytes]), 'f.bin');
        for (const value of [new Blob([bytes], { type: 'application/x-test' }), form]) {
          const headers: HeaderRecord = {};
          const body = toRequestBody(value, headers);
          for (let attempt = 0; attempt < 2; attempt++) {
            await readAll((await call(t, { origin: srv.origin, method: 'PUT', headers, body })).body);
          }
        }
        expect(seen).to.have.length(4);
        expect(seen[0]!.body.equals(bytes)).to.equal(true);
        expect(seen[1]!.body.equals(bytes)).to.equal(true);
        expect(seen[3]!.body.equals(seen[2]!.body)).to.equal(true);
        expect(seen[3]!.headers['content-type']).to.equal(seen[2]!.headers['content-type']);
      });

      it('refuses to send a one-shot body twice, without contacting the server', async function () {
        const seen: SeenRequest[] = [];
        const srv = await echoServer(seen);
        const t = transport();
        const headers: HeaderRecord = {};
        const body = toRequestBody(Readable.from([Buffer.from('once')]), headers);
        await readAll((await call(t, { origin: srv.origin, method: 'POST', headers, body })).body);
        const err = await rejection(call(t, { origin: srv.origin, method: 'POST', headers, body }));
        expectMeshError(err, ErrorCode.Body);
        expect(seen.map((s) => s.body.toString())).to.deep.equal(['once']);
      });

      it('fails the request with MESHFETCH_BODY when a body iterable yields a non-byte value', async function () {
        const srv = await serve((req, res) => {
          req.resume();
        });
        const headers: HeaderRecord = {};
        const body = toRequestBody(
          (async function* () {
            yield Buffer.from('ok');
            yield 42;
          })(),
          headers,
        );
        const err = await rejection(call(transport(), { origin: srv.origin, method: 'POST', headers, body }));
        expectMeshError(err, ErrorCode.Body);
      });
    });

    describe('streaming responses', function () {
      it('streams a large (8 MiB) body: the first chunk is read before the server has finished writing', async function () {
        const size = 8 * 1024 * 1024;
        const payload = Buffer.alloc(size);
        for (let i = 0; i < size; i += 4) payload.writeUInt32BE(i, i);
        const firstChunkRead = signal();
        let serverFinished = false;
        const srv = await serve(async (_req, res) => {
          res.writeHead(200, { 'content-length': size });
          res.write(payload.subarray(0, 64 * 1024));
          // The rest is written only once the client has read something: a transport that buffered
          // the whole body before handing it up would never see this happen.
          await firstChunkRead.promise;
          res.end(payload.subarray(64 * 1024), () => {
            serverFinished = true;
          });
        });
        const res = await call(transport(), { origin: srv.origin });
        const chunks: Buffer[] = [];
        let finishedAtFirstChunk: boolean | undefined;
        for await (const chunk of res.body) {
          if (finishedAtFirstChunk === undefined) {
            finishedAtFirstChunk = serverFinished;
            firstChunkRead.resolve();
          }
          chunks.push(chunk as Buffer);
        }
        expect(finishedAtFirstChunk).to.equal(false);
        expect(serverFinished).to.equal(true);
        expect(Buffer.concat(chunks).equals(payload)).to.equal(true);
      });
    });

    describe('aborts', function () {
      it('rejects with the signal reason when aborted before the response, and closes the socket', async function () {
        const arrived = signal<IncomingMessage>();
        const srv = await serve((req) => {
          arrived.resolve(req); // and never answers
        });
        const controller = new AbortController();
        const pending = call(transport(), { origin: srv.origin }, ctxWith({}, controller.signal));
        const req = await arrived.promise;
        const reason = new Error('caller gave up');
        controller.abort(reason);
        expect(await rejection(pending)).to.equal(reason);
        await closed(req.socket);
      });

      it('rejects with the reason of an already aborted signal and sends nothing', async function () {
        const seen: SeenRequest[] = [];
        const srv = await echoServer(seen);
        const t = transport();
        const reason = new Error('aborted before the call');
        const headers: HeaderRecord = {};
        const body = toRequestBody(Readable.from([Buffer.from('one-shot')]), headers);
        const err = await rejection(call(t, { origin: srv.origin, method: 'POST', headers, body }, ctxWith({}, AbortSignal.abort(reason))));
        expect(err).to.equal(reason);
        await readAll((await call(t, { origin: srv.origin, path: '/after' })).body);
        expect(seen.map((s) => s.url)).to.deep.equal(['/after']);
      });

      it('destroys the body stream with the signal reason when aborted mid-body', async function () {
        const arrived = signal<ServerResponse>();
        const srv = await serve((_req, res) => {
          res.writeHead(200, { 'content-length': 1_000_000 });
          res.write('first part');
          arrived.resolve(res);
        });
        const controller = new AbortController();
        const res = await call(transport(), { origin: srv.origin }, ctxWith({}, controller.signal));
        const [first] = (await once(res.body, 'data')) as [Buffer];
        expect(first.toString()).to.equal('first part');
        const serverRes = await arrived.promise;
        const failed = once(res.body, 'error');
        const reason = new Error('stop reading');
        controller.abort(reason);
        const [err] = await failed;
        expect(err).to.equal(reason);
        expect(res.body.destroyed).to.equal(true);
        await closed(serverRes.socket!);
      });

      it('releases the connection when a body is destroyed unread', async function () {
        const sockets: Socket[] = [];
        const srv = await serve((req, res) => {
          sockets.push(req.socket);
          if (req.url === '/big') {
            res.writeHead(200, { 'content-length': 4 * 1024 * 1024 });
            res.write(Buffer.alloc(256 * 1024)); // and never finishes
          } else {
            res.end('next');
          }
        });
        const t = transport();
        const res = await call(t, { origin: srv.origin, path: '/big' });
        res.body.destroy();
        await closed(sockets[0]!);
        const next = await call(t, { origin: srv.origin, path: '/next' });
        expect((await readAll(next.body)).toString()).to.equal('next');
      });

      it('reuses keep-alive connections for sequential requests', async function () {
        const srv = await serve((_req, res) => {
          res.end('ok');
        });
        const t = transport();
        for (let i = 0; i < 4; i++) {
          const res = await call(t, { origin: srv.origin, path: `/${i}` });
          expect((await readAll(res.body)).toString()).to.equal('ok');
        }
        const sockets = srv.requests.map((r) => r.socket);
        expect(sockets).to.have.length(4);
        // got (node:http's agent) reuses the one socket every time. undici's pool may open a second
        // connection when a request follows in the same tick the previous body ended (its first
        // connection has not signalled "drain" yet), but from then on the connections are reused.
        expect(new Set(sockets).size).to.be.at.most(2);
        expect(sockets.slice(0, 3)).to.include(sockets[3]);
      });
    });

    describe('timeouts and failures', function () {
      it('rejects with MESHFETCH_TIMEOUT when no response headers come within perTryTimeout', async function () {
        const arrived = signal<IncomingMessage>();
        const srv = await serve((req) => {
          arrived.resolve(req); // never answers
        });
        const err = await rejection(call(transport(), { origin: srv.origin }, ctxWith({ perTryTimeout: 100 })));
        expectMeshError(err, ErrorCode.Timeout);
        expect((err as MeshError).retryable).to.equal(true);
        // Names the policy knob and its value, not the library's "Headers Timeout Error".
        expect((err as MeshError).message).to.equal(`test-service at ${srv.origin} sent no response headers within perTryTimeout (100ms) on attempt 1`);
        await closed((await arrived.promise).socket);
      });

      it('fails the body with a timeout when it stalls longer than bodyTimeout', async function () {
        const srv = await serve((_req, res) => {
          res.writeHead(200, { 'content-length': 1000 });
          res.write('partial'); // then stalls
        });
        const ctx = ctxWith({ bodyTimeout: 100 });
        const res = await call(transport(), { origin: srv.origin }, ctx);
        expect(res.status).to.equal(200);
        const err = await rejection(readAll(res.body));
        expect(res.body.destroyed).to.equal(true);
        expectMeshError(transportError(err, ctx, srv.origin), ErrorCode.Timeout);
      });

      it('rejects with MESHFETCH_CONNECT when the connection is refused', async function () {
        const dead = await startServer(() => {});
        const origin = dead.origin;
        await dead.close();
        const err = await rejection(call(transport(), { origin }));
        expectMeshError(err, ErrorCode.Connect);
        expect((err as MeshError).retryable).to.equal(true);
      });

      it('rejects with MESHFETCH_RESET when the server destroys the socket before answering', async function () {
        const srv = await serve((req) => {
          req.socket.destroy();
        });
        const err = await rejection(call(transport(), { origin: srv.origin }));
        expectMeshError(err, ErrorCode.Reset);
        expect(srv.requests).to.have.length(1); // not retried by the transport
      });

      it('fails the body with a reset when the server destroys the socket mid-body', async function () {
        const srv = await serve((req, res) => {
          res.writeHead(200, { 'content-length': 1000 });
          res.write('partial', () => req.socket.destroy());
        });
        const ctx = testContext();
        const res = await call(transport(), { origin: srv.origin }, ctx);
        const err = await rejection(readAll(res.body));
        expect(res.body.destroyed).to.equal(true);
        expectMeshError(transportError(err, ctx, srv.origin), ErrorCode.Reset);
      });

      it('refuses requests after close() with MESHFETCH_CLOSED, and closes idle connections', async function () {
        const srv = await serve((_req, res) => {
          res.end('ok');
        });
        const t = transport();
        await readAll((await call(t, { origin: srv.origin })).body);
        const socket = srv.requests[0]!.socket;
        await t.close();
        await closed(socket);
        expectMeshError(await rejection(call(t, { origin: srv.origin })), ErrorCode.Closed);
        expect(srv.requests).to.have.length(1);
      });
    });

    describeHostileUpstreams(factory);
    describeConnectionPool(pooled);

    describe('TLS', function () {
      let certs: TestCerts;
      let otherCa: TestCerts;

      before(async function () {
        certs = await generateCerts({ serverSpiffeId: 'spiffe://meshfetch.local/payments', clientSpiffeId: 'spiffe://meshfetch.local/checkout' });
        otherCa = await generateCerts({ caName: 'some other CA' });
      });

      it('talks HTTPS to a server whose certificate the configured CA signed', async function () {
        const srv = await serve(
          (req, res) => {
            res.end(`secure ${req.url}`);
          },
          createHttpsServer({ cert: certs.server.cert, key: certs.server.key }),
        );
        expect(srv.origin).to.match(/^https:/);
        const res = await call(transport({ tls: fixedTls({ ca: certs.ca }) }), { origin: srv.origin, path: '/tls' });
        expect(res.status).to.equal(200);
        expect((await readAll(res.body)).toString()).to.equal('secure /tls');
      });

      it('presents the client certificate (mTLS) from settings.tls', async function () {
        const srv = await serve(
          (req, res) => {
            const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
            res.end(peer.subjectaltname ?? 'none');
          },
          createHttpsServer({ cert: certs.server.cert, key: certs.server.key, ca: certs.ca, requestCert: true, rejectUnauthorized: true }),
        );
        const t = transport({ tls: fixedTls({ ca: certs.ca, cert: certs.client.cert, key: certs.client.key }) });
        const res = await call(t, { origin: srv.origin });
        expect((await readAll(res.body)).toString()).to.equal('URI:spiffe://meshfetch.local/checkout');
      });

      it('rejects with MESHFETCH_TLS (not retryable) when an untrusted CA signed the server certificate', async function () {
        const srv = await serve(
          (_req, res) => {
            res.end('should not get here');
          },
          createHttpsServer({ cert: otherCa.server.cert, key: otherCa.server.key }),
        );
        const err = await rejection(call(transport({ tls: fixedTls({ ca: certs.ca }) }), { origin: srv.origin }));
        expectMeshError(err, ErrorCode.Tls);
        expect((err as MeshError).retryable).to.equal(false);
        expect(srv.requests).to.have.length(0);
      });
    });
  });
}
