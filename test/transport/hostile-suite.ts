import type { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { CallContext, MeshRequest, MeshResponse } from '../../lib/pipeline/types.ts';
import type { Transport, TransportFactory } from '../../lib/transport/types.ts';
import { readBytes } from '../../lib/transport/response-body.ts';
import { testContext } from '../helpers/context.ts';
import { deadOrigin } from '../helpers/fault-server.ts';
import { startRawServer } from '../helpers/raw-server.ts';
import type { RawServer } from '../helpers/raw-server.ts';
import { startServer } from '../helpers/server.ts';
import type { TestHandler, TestServer } from '../helpers/server.ts';
import { rejection } from '../helpers/rejection.ts';

/** Answers a parser must reject, each sent in one packet with the headers. */
const BAD_ANSWERS: { name: string; method: string; bytes: string; body?: string }[] = [
  { name: 'a 204 with a body', method: 'GET', bytes: 'HTTP/1.1 204 No Content\r\n\r\nthis is a body' },
  { name: 'a HEAD answer with a body', method: 'HEAD', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nthis is a body' },
  { name: 'a bad chunk size', method: 'GET', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' },
  { name: 'bytes after Content-Length', method: 'GET', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA BYTES', body: 'ok' },
  { name: 'a status line that is not HTTP', method: 'GET', bytes: 'SMTP 220 hello\r\n\r\n' },
  { name: 'a header with no colon', method: 'GET', bytes: 'HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok' },
];

const SECRETS = ['s3cr3t-header', 's3cr3t-cookie', 's3cr3t-proxy', 's3cr3t-query'];
const SECRET_HEADERS = {
  authorization: 'Bearer s3cr3t-header',
  cookie: 'sid=s3cr3t-cookie',
  'proxy-authorization': 'Basic s3cr3t-proxy',
};

/** Everything a log line could show of an error: inspect (hidden fields, whole depth), stack, JSON. */
function printed(err: unknown): string {
  const e = err as Error;
  return [inspect(err, { depth: Infinity, showHidden: true }), String(e?.stack), String(e?.message), JSON.stringify(err)].join('\n');
}

function expectNoSecret(err: unknown): void {
  const text = printed(err);
  for (const secret of SECRETS) expect(text, `${secret} leaked in:\n${text.slice(0, 2000)}`).to.not.include(secret);
}

/** Either the answer is what was sent, or the call (or its body) failed with MESHFETCH_RESET. */
async function outcome(request: Promise<MeshResponse>): Promise<{ status: number; body: string } | MeshError> {
  let res: MeshResponse;
  try {
    res = await request;
  } catch (err) {
    return err as MeshError;
  }
  try {
    return { status: res.status, body: (await readBytes(res.body as Readable)).toString() };
  } catch (err) {
    return err as MeshError;
  }
}

/** Hostile upstreams and failures whose errors must be MeshErrors with nothing of the request in them. */
export function describeHostileUpstreams(factory: TransportFactory): void {
  describe('hostile upstreams', function () {
    const closers: (() => Promise<void>)[] = [];
    const transports: Transport[] = [];

    function transport(): Transport {
      const created = factory({});
      transports.push(created);
      return created;
    }

    async function raw(bytes: string): Promise<RawServer> {
      const srv = await startRawServer(bytes);
      closers.push(() => srv.close());
      return srv;
    }

    async function serve(handler: TestHandler): Promise<TestServer> {
      const srv = await startServer(handler);
      closers.push(() => srv.close());
      return srv;
    }

    function call(t: Transport, req: Partial<MeshRequest> & { origin: string }, ctx: CallContext = testContext()): Promise<MeshResponse> {
      return t.request({ method: 'GET', path: '/', headers: {}, body: null, ...req }, ctx);
    }

    afterEach(async function () {
      await Promise.all(closers.splice(0).map((close) => close()));
      await Promise.all(transports.splice(0).map((t) => t.close()));
    });

    for (const bad of BAD_ANSWERS) {
      it(`survives ${bad.name} sent with the headers: MESHFETCH_RESET or the bytes the answer framed, nothing else`, async function () {
        const srv = await raw(bad.bytes);
        const t = transport();
        const result = await outcome(call(t, { origin: srv.origin, method: bad.method }));
        if (result instanceof Error) {
          expect(result, String(result)).to.be.instanceOf(MeshError);
          expect(result.code, String(result)).to.equal(ErrorCode.Reset);
          expectNoSecret(result);
        } else {
          // A parser that stops at the answer's end keeps what it framed; the bytes after it are dropped.
          expect(result.body).to.equal(bad.body ?? '');
        }
        // The transport still works: the next call gets a fresh connection.
        const good = await serve((_req, res) => void res.end('fine'));
        expect(await outcome(call(t, { origin: good.origin }))).to.deep.equal({ status: 200, body: 'fine' });
      });
    }

    it('a bad chunk in the body is MESHFETCH_RESET, never a raw parser error', async function () {
      const srv = await raw('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
      const result = await outcome(call(transport(), { origin: srv.origin }));
      expect(result).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
    });

    describe('errors never carry credentials', function () {
      const secretRequest = { path: '/charge?token=s3cr3t-query&x=1', headers: SECRET_HEADERS };

      it('connection refused', async function () {
        const err = await rejection(call(transport(), { origin: await deadOrigin(), ...secretRequest }));
        expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Connect);
        expectNoSecret(err);
      });

      it('reset before the answer', async function () {
        const srv = await serve((req) => void req.socket.destroy());
        const err = await rejection(call(transport(), { origin: srv.origin, ...secretRequest }));
        expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
        expectNoSecret(err);
      });

      it('reset in the middle of the body', async function () {
        const srv = await serve((req, res) => {
          res.writeHead(200, { 'content-length': 100 });
          res.write('part', () => req.socket.destroy());
        });
        const result = await outcome(call(transport(), { origin: srv.origin, ...secretRequest }));
        expect(result).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
        expectNoSecret(result);
      });

      it('per-try timeout', async function () {
        const srv = await serve(() => {}); // never answers
        const err = await rejection(call(transport(), { origin: srv.origin, ...secretRequest }, testContext({ policy: { perTryTimeout: 30 } })));
        expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
        expectNoSecret(err);
      });

      it('a header value the request cannot carry', async function () {
        const srv = await serve((_req, res) => void res.end());
        const headers = { ...SECRET_HEADERS, authorization: 'Bearer s3cr3t-header\r\nx-injected: 1' };
        const err = await rejection(call(transport(), { origin: srv.origin, path: secretRequest.path, headers }));
        expect(err).to.be.instanceOf(TypeError);
        expectNoSecret(err);
      });

      it('a parser error', async function () {
        const srv = await raw('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
        const result = await outcome(call(transport(), { origin: srv.origin, ...secretRequest }));
        expect(result).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
        expectNoSecret(result);
      });
    });
  });
}
