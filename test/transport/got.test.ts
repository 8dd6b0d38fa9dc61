import { Agent as HttpAgent } from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import got from 'got';
import type { Transport } from '../../lib/transport/types.ts';
import { gotTransport } from '../../lib/transport/got.ts';
import { testContext } from '../helpers/context.ts';
import { startServer } from '../helpers/server.ts';
import type { TestHandler, TestServer } from '../helpers/server.ts';
import { describeTransport, readAll } from './suite.ts';

describeTransport('got', gotTransport(), (connections) => gotTransport({ connections }));
// A team's own instance, with its own defaults and hooks: the suite must hold for it too.
describeTransport(
  'got (a user instance)',
  gotTransport({ got: got.extend({ headers: { 'x-team': 'payments' }, retry: { limit: 3 }, followRedirect: true }) }),
  (connections) => gotTransport({ connections, got: got.extend({ headers: { 'x-team': 'payments' } }) }),
);

describe('transport: got specifics', function () {
  let srv: TestServer | undefined;
  let transport: Transport | undefined;

  async function serve(handler: TestHandler): Promise<TestServer> {
    srv = await startServer(handler);
    return srv;
  }

  function get(t: Transport, origin: string, path = '/') {
    return t.request({ method: 'GET', origin, path, headers: {}, body: null }, testContext());
  }

  afterEach(async function () {
    await srv?.close();
    await transport?.close();
    srv = undefined;
    transport = undefined;
  });

  it("honours the user's got instance and its hooks (beforeRequest adds a header)", async function () {
    const server = await serve((req, res) => {
      res.end(`${req.headers['x-from-hook']} ${req.headers['x-default']}`);
    });
    const seen: string[] = [];
    const mine = got.extend({
      headers: { 'x-default': 'instance-default' },
      hooks: {
        beforeRequest: [
          (options) => {
            options.headers['x-from-hook'] = 'hooked';
            seen.push(String(options.url));
          },
        ],
      },
    });
    transport = gotTransport({ got: mine })({});
    const res = await get(transport, server.origin, '/hooked?q=1');
    expect((await readAll(res.body)).toString()).to.equal('hooked instance-default');
    expect(seen).to.deep.equal([`${server.origin}/hooked?q=1`]);
  });

  it("never lets got's own retry fire: a 503 comes back once, even from an instance set to retry", async function () {
    const server = await serve((_req, res) => {
      res.writeHead(503, { 'retry-after': '0' });
      res.end('unavailable');
    });
    const retries: number[] = [];
    const eager = got.extend({
      retry: { limit: 5, statusCodes: [503], methods: ['GET'], calculateDelay: () => 1 },
      hooks: { beforeRetry: [(_err, count) => void retries.push(count)] },
    });
    transport = gotTransport({ got: eager })({});
    const res = await get(transport, server.origin);
    expect(res.status).to.equal(503);
    expect((await readAll(res.body)).toString()).to.equal('unavailable');
    expect(server.requests).to.have.length(1);
    expect(retries).to.deep.equal([]);
  });

  it("does not retry a reset connection either (the mesh's retry layer owns retries)", async function () {
    const server = await serve((req) => {
      req.socket.destroy();
    });
    transport = gotTransport({ got: got.extend({ retry: { limit: 5, calculateDelay: () => 1 } }) })({});
    await get(transport, server.origin).then(
      () => expect.fail('should have failed'),
      () => undefined,
    );
    expect(server.requests).to.have.length(1);
  });

  it('decodes a gzip body (got decompress default) and drops content-encoding/content-length', async function () {
    const text = 'compressed '.repeat(1000);
    const gz = gzipSync(text);
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gz.length, 'x-accept': req.headers['accept-encoding'] ?? '' });
      res.end(gz);
    });
    transport = gotTransport()({});
    const res = await get(transport, server.origin);
    expect(res.headers['x-accept']).to.match(/gzip/);
    expect(res.headers['content-encoding']).to.equal(undefined);
    expect(res.headers['content-length']).to.equal(undefined);
    expect((await readAll(res.body)).toString()).to.equal(text);
  });

  it("uses the instance's own agent when it has one, and leaves it open on close()", async function () {
    const server = await serve((_req, res) => {
      res.end('ok');
    });
    const agent = new HttpAgent({ keepAlive: true });
    try {
      const created: Socket[] = [];
      const createConnection = agent.createConnection.bind(agent);
      agent.createConnection = ((...args: Parameters<typeof createConnection>) => {
        const socket = createConnection(...args) as Socket;
        created.push(socket);
        return socket;
      }) as typeof agent.createConnection;
      transport = gotTransport({ got: got.extend({ agent: { http: agent } }) })({});
      expect((await readAll((await get(transport, server.origin)).body)).toString()).to.equal('ok');
      expect(created).to.have.length(1);
      await transport.close();
      // The user's agent still holds its idle keep-alive socket: the transport did not own it.
      expect(created[0]!.destroyed).to.equal(false);
      expect(server.sockets.size).to.equal(1);
    } finally {
      agent.destroy();
    }
  });
});
