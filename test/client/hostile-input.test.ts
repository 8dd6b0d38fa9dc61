import { expect } from 'chai';
import { defineService, ErrorCode, MeshError } from '../../lib/index.ts';
import { Harness, TRANSPORTS, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';
import { sendJson, startServer } from '../helpers/server.ts';

const Users = defineService({
  routes: {
    profile: { method: 'GET', path: '/users/:id/profile' },
    search: { method: 'GET', path: '/users/search' },
  },
});

function expectTypeError(err: unknown, message: string): void {
  expect(err, String(err)).to.be.instanceOf(TypeError);
  expect((err as Error).message).to.equal(message);
}

for (const { name, create } of TRANSPORTS) {
  describe(`hostile caller input (${name} transport, real loopback)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    describe('path parameters', function () {
      it('refuses "." and ".." as a parameter, which URL parsers would resolve away: nothing is sent', async function () {
        const srv = await h.server([], { status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const users = h.mesh(upPolicy(srv.origin)).client('up', Users);
        for (const id of ['..', '.']) {
          const err = await rejection(users.profile({ params: { id } }));
          expectTypeError(err, `route profile: path parameter "id" is "${id}", a path traversal segment`);
        }
        expect(srv.requests).to.deep.equal([]);
      });

      it('sends every other value percent-encoded within its segment, as the server sees it on the wire', async function () {
        const srv = await h.server([], { status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const users = h.mesh(upPolicy(srv.origin)).client('up', Users);
        for (const id of ['../admin', 'a/b?x=1', '...', '.hidden', '%2e%2e', 'x#y']) await users.profile({ params: { id } });
        expect(srv.requests.map((r) => r.url)).to.deep.equal([
          '/users/..%2Fadmin/profile',
          '/users/a%2Fb%3Fx%3D1/profile',
          '/users/.../profile',
          '/users/.hidden/profile',
          '/users/%252e%252e/profile',
          '/users/x%23y/profile',
        ]);
      });

      it('does not read a parameter from Object.prototype ("constructor" is missing unless given)', async function () {
        const srv = await h.server([], { status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const Odd = defineService({ routes: { thing: { method: 'GET', path: '/things/:constructor' } } });
        const client = h.mesh(upPolicy(srv.origin)).client('up', Odd);
        const err = await rejection(client.thing({ params: {} as { constructor: string } }));
        expectTypeError(err, 'route thing: path parameter "constructor" is missing');
        await client.thing({ params: { constructor: 'c1' } });
        expect(srv.requests.map((r) => r.url)).to.deep.equal(['/things/c1']);
      });
    });

    describe('query parameters', function () {
      it('leaves out null and undefined, alone or in a list, and repeats the key for a list', async function () {
        const srv = await h.server([], { status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const client = h.mesh(upPolicy(srv.origin)).client('up');
        await client.get('/q', { query: { a: [1, null, undefined, 'two'], b: null, c: undefined, d: false } });
        await client.get('/q', { query: { a: [null, undefined] } });
        expect(srv.requests.map((r) => r.url)).to.deep.equal(['/q?a=1&a=two&d=false', '/q']);
      });

      it('refuses an object value with a TypeError naming the key, instead of sending [object Object]', async function () {
        const srv = await h.server([], { status: 200, body: '{}' });
        const client = h.mesh(upPolicy(srv.origin)).client('up', Users);
        const bad = { filter: { name: 'x' } } as unknown as Record<string, string>;
        expectTypeError(await rejection(client.get('/q', { query: bad })), 'query.filter: expected a string, number or boolean (or a list of them), got object');
        expectTypeError(
          await rejection(client.search({ query: { ids: [1, [2, 3]] } as unknown as Record<string, number> })),
          'query.ids: expected a string, number or boolean (or a list of them), got object',
        );
        expect(srv.requests).to.deep.equal([]);
      });

      it('drops a #fragment from the path, so the query is sent and the fragment is not', async function () {
        const srv = await h.server([], { status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const client = h.mesh(upPolicy(srv.origin)).client('up');
        await client.get('/q#frag', { query: { a: 1 } });
        await client.get('/q?x=1#frag', { query: { a: 1 } });
        await (await client.fetch('/plain#frag')).arrayBuffer();
        expect(srv.requests.map((r) => r.url)).to.deep.equal(['/q?a=1', '/q?x=1&a=1', '/plain']);
      });
    });

    describe('header names', function () {
      it('sends headers named constructor, __proto__ and toString as given, on fetch() and the JSON helpers', async function () {
        // got copies headers into plain objects of its own (lowercase-keys), which drop "__proto__".
        const protoArrives = name !== 'got';
        const seen: string[][] = [];
        const srv = await startServer((req, res) => {
          seen.push(req.rawHeaders); // raw: node's own headers object drops a "__proto__" header
          sendJson(res, 200, {});
        });
        h.closeWithServers(() => srv.close());
        const client = h.mesh(upPolicy(srv.origin)).client('up');
        const headers = JSON.parse('{ "constructor": "mine", "__proto__": "proto", "toString": "ts" }') as Record<string, string>;
        await client.get('/h', { headers });
        await (await client.fetch('/h', { headers })).arrayBuffer();
        await (await client.fetch('/h', { headers: Object.entries(headers) })).arrayBuffer();
        expect(seen.length).to.equal(3);
        for (const raw of seen) {
          const pairs = [];
          for (let i = 0; i < raw.length; i += 2) pairs.push(`${raw[i]!.toLowerCase()}: ${raw[i + 1]}`);
          expect(pairs).to.include.members(['constructor: mine', 'tostring: ts']);
          expect(pairs.includes('__proto__: proto')).to.equal(protoArrives);
          expect(pairs.filter((pair) => pair.startsWith('constructor:'))).to.have.length(1);
        }
      });
    });

    describe('JSON body size (policy key jsonBodyLimit)', function () {
      const big = JSON.stringify({ data: 'x'.repeat(4096) });

      it('refuses a 2xx body over the limit with MESHFETCH_BODY_TOO_LARGE, announced by content-length or not', async function () {
        const srv = await h.server([
          { status: 200, body: big, headers: { 'content-type': 'application/json' } },
          { status: 200, body: JSON.stringify({ ok: true }), headers: { 'content-type': 'application/json' } },
        ]);
        const client = h.mesh(upPolicy(srv.origin, { jsonBodyLimit: '1KiB' })).client('up');
        const err = await rejection(client.get('/big'));
        expect(err, String(err)).to.be.instanceOf(MeshError);
        expect((err as MeshError).code).to.equal(ErrorCode.BodyTooLarge);
        expect((err as MeshError).message).to.equal("response body is larger than 1024 bytes (the policy's jsonBodyLimit)");
        expect((err as MeshError).service).to.equal('up');
        expect(await client.get('/small')).to.deep.equal({ ok: true });
      });

      it('stops reading a body without content-length as soon as it passes the limit', async function () {
        let written = 0;
        let closed!: () => void;
        const gone = new Promise<void>((resolve) => (closed = resolve));
        const chunked = await startServer((_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          const chunk = Buffer.alloc(16 * 1024, 0x20);
          // Writes until the client goes away: an endless body must not be buffered whole.
          const pump = (): void => {
            while (!res.destroyed && written < 64 * 1024 * 1024 && res.write(chunk)) written += chunk.length;
            if (!res.destroyed && written < 64 * 1024 * 1024) res.once('drain', pump);
          };
          res.once('close', closed);
          pump();
        });
        h.closeWithServers(() => chunked.close());
        const client = h.mesh(upPolicy(chunked.origin, { jsonBodyLimit: 65536 })).client('up');
        const err = await rejection(client.get('/endless'));
        expect((err as MeshError).code, String(err)).to.equal(ErrorCode.BodyTooLarge);
        expect((err as MeshError).service).to.equal('up');
        await gone;
        expect(written).to.be.below(16 * 1024 * 1024);
      });
    });
  });
}

describe('typed client: reserved route names', function () {
  it('refuses a route named then, so a client never becomes a thenable', function () {
    expect(() => defineService({ routes: { then: { method: 'POST', path: '/jobs/then' } } })).to.throw(
      MeshError,
      'defineService routes.then: "then" is reserved',
    );
  });
});
