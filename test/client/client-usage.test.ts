import { expect } from 'chai';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMesh, defineService, ErrorCode, HttpStatusError, isMeshError, MeshError } from '../../lib/index.ts';
import type { Decoder, Mesh } from '../../lib/index.ts';
import { rejection } from '../helpers/rejection.ts';
import { readBody, sendJson, startServer } from '../helpers/server.ts';
import type { TestHandler, TestServer } from '../helpers/server.ts';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function echo(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  sendJson(res, 200, { method: req.method!, url: req.url!, headers: req.headers, body } satisfies Seen);
}

/** A decoder in the style of zod's parse: returns the value, or throws saying what is wrong. */
function amountDecoder(): Decoder<{ amount: number }> {
  return (value) => {
    const amount = (value as { amount?: unknown } | null)?.amount;
    if (typeof amount !== 'number') throw new Error(`amount: expected a number, got ${JSON.stringify(amount)}`);
    return { amount };
  };
}

describe('client: what a new user expects', () => {
  let server: TestServer;
  let mesh: Mesh;

  async function start(handler: TestHandler = echo): Promise<void> {
    server = await startServer(handler);
    mesh = createMesh({ env: {}, policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [server.origin] } } } });
  }

  afterEach(async () => {
    await server.close();
    await mesh.close();
  });

  describe('typed route decoders', () => {
    it('runs the body decoder: a rejected body is MESHFETCH_DECODE naming route and side, and nothing is sent', async () => {
      await start();
      const Payments = defineService({ routes: { createCharge: { method: 'POST', path: '/charges', body: amountDecoder() } } });
      const client = mesh.client('payments', Payments);
      const err = (await rejection(client.createCharge({ body: { amount: 'five' as unknown as number } }))) as MeshError;
      expect(err).to.be.instanceOf(MeshError);
      expect(err).to.include({ code: ErrorCode.Decode, service: 'payments', route: 'createCharge', retryable: false });
      expect(err.message).to.equal(
        'payments route createCharge: the body decoder rejected the request body (nothing was sent): amount: expected a number, got "five"',
      );
      expect((err.cause as Error).message).to.match(/^amount:/);
      expect(server.requests).to.have.length(0);
    });

    it('sends what the body decoder returned', async () => {
      await start();
      const Payments = defineService({
        routes: { createCharge: { method: 'POST', path: '/charges', body: (v: unknown): { amount: number } => Object.assign({ normalized: true }, v as { amount: number }) } },
      });
      const seen = (await mesh.client('payments', Payments).createCharge({ body: { amount: 5 } })) as Seen;
      expect(JSON.parse(seen.body)).to.deep.equal({ amount: 5, normalized: true });
    });

    it('runs the query decoder and sends its result; a rejected query is MESHFETCH_DECODE', async () => {
      await start();
      const Payments = defineService({
        routes: {
          list: {
            method: 'GET',
            path: '/charges',
            query: (v: unknown): { limit: number } => {
              const limit = Number((v as { limit: unknown }).limit);
              if (!Number.isInteger(limit)) throw new Error('limit: expected a whole number');
              return { limit };
            },
          },
        },
      });
      const client = mesh.client('payments', Payments);
      const seen = (await client.list({ query: { limit: 10 } })) as Seen;
      expect(seen.url).to.equal('/charges?limit=10');
      const err = (await rejection(client.list({ query: { limit: 1.5 } }))) as MeshError;
      expect(err).to.include({ code: ErrorCode.Decode, route: 'list' });
      expect(err.message).to.equal('payments route list: the query decoder rejected the request query (nothing was sent): limit: expected a whole number');
      expect(server.requests).to.have.length(1);
    });

    it('a response decoder that throws is MESHFETCH_DECODE naming the response side, not a bare Error', async () => {
      await start((_req, res) => sendJson(res, 200, { amount: 'five' }));
      const Payments = defineService({ routes: { getCharge: { method: 'GET', path: '/charges/:id', response: amountDecoder() } } });
      const err = (await rejection(mesh.client('payments', Payments).getCharge({ params: { id: '1' } }))) as MeshError;
      expect(isMeshError(err, ErrorCode.Decode)).to.equal(true);
      expect(err).to.include({ service: 'payments', route: 'getCharge' });
      expect(err.message).to.equal('payments route getCharge: the response decoder rejected the response body: amount: expected a number, got "five"');
    });
  });

  describe('json and body', () => {
    it('post({ json, body }) is a TypeError, and nothing is sent', async () => {
      await start();
      const err = (await rejection(mesh.client('payments').post('/charges?x=1', { json: { amount: 5 }, body: 'raw' }))) as MeshError;
      expect(err).to.be.instanceOf(TypeError);
      expect(err.message).to.equal('POST /charges: pass json or body, not both');
      expect(server.requests).to.have.length(0);
    });

    it("get('/x', { json }) and head with a body are TypeErrors, as docs/errors.md says, and nothing is sent", async () => {
      await start();
      const client = mesh.client('payments');
      const withJson = (await rejection(client.get('/x', { json: { a: 1 } }))) as MeshError;
      expect(withJson).to.be.instanceOf(TypeError);
      expect(withJson.message).to.equal('Request with GET method cannot have body.');
      const withBody = (await rejection(client.get('/x', { body: 'b' }))) as MeshError;
      expect(withBody.message).to.equal('Request with GET method cannot have body.');
      expect(server.requests).to.have.length(0);
    });
  });

  describe('HttpStatusError', () => {
    it('names the method and the path, without the query', async () => {
      await start((_req, res) => sendJson(res, 404, { error: 'no' }));
      const err = (await rejection(mesh.client('payments').get('/charges/1?token=secret', { query: { card: '4242' } }))) as MeshError;
      expect(err).to.be.instanceOf(HttpStatusError);
      expect(err.message).to.equal('HTTP 404 from payments GET /charges/1');
    });
  });

  describe("per-client defaults: mesh.client(name, { headers, timeout })", () => {
    it('sends the default headers with every call of that client; a call header of the same name wins', async () => {
      await start();
      const payments = mesh.client('payments', { headers: { Authorization: 'Bearer t0', 'user-agent': 'checkout/1.0' } });
      const viaGet = (await payments.get('/a')) as Seen;
      expect(viaGet.headers).to.include({ authorization: 'Bearer t0', 'user-agent': 'checkout/1.0' });
      const viaPost = (await payments.post('/b', { json: {}, headers: { authorization: 'Bearer mine' } })) as Seen;
      expect(viaPost.headers).to.include({ authorization: 'Bearer mine', 'user-agent': 'checkout/1.0' });
      const viaFetch = (await (await payments.fetch('/c', { headers: new Headers({ 'x-extra': '1' }) })).json()) as Seen;
      expect(viaFetch.headers).to.include({ authorization: 'Bearer t0', 'x-extra': '1' });
      // The plain client of the same service is not affected.
      const plain = (await mesh.client('payments').get('/d')) as Seen;
      expect(plain.headers).to.not.have.property('authorization');
    });

    it('works with a contract too: mesh.client(name, contract, defaults)', async () => {
      await start();
      const Payments = defineService({ routes: { getCharge: { method: 'GET', path: '/charges/:id' } } });
      const client = mesh.client('payments', Payments, { headers: { authorization: 'Bearer t1' } });
      const seen = (await client.getCharge({ params: { id: '7' } })) as Seen;
      expect(seen.headers.authorization).to.equal('Bearer t1');
    });

    it('applies a default timeout to every call of the client', async () => {
      await start(() => {}); // never answers
      const err = (await rejection(mesh.client('payments', { timeout: 30 }).get('/slow'))) as MeshError;
      expect(err).to.include({ code: ErrorCode.Timeout, service: 'payments' });
      // 30ms, less the millisecond or so between starting the call and arming its timer (the policy says 10s).
      expect(err.message).to.match(/^call to payments exceeded its (2\d|30)ms deadline$/);
    });

    it('rejects an unknown defaults key with MESHFETCH_CONFIG and a suggestion', async () => {
      await start();
      expect(() => mesh.client('payments', { header: { a: 'b' } } as never))
        .to.throw(MeshError, 'mesh.client("payments", defaults).header: unknown key; did you mean "headers"?; known keys: headers, timeout');
      expect(() => mesh.client('payments', { timeout: -1 })).to.throw(MeshError, /timeout: expected a positive number/);
    });
  });
});
