import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { defineService } from '../../lib/client/contract.ts';
import { ErrorCode, HttpStatusError, MeshError } from '../../lib/errors.ts';
import { MAX_REDIRECTS } from '../../lib/routing/redirect.ts';
import { Harness, TRANSPORTS, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';
import { readBody, startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Answers with a redirect; true tells the test server the answer is sent. */
function redirect(res: ServerResponse, status: number, location: string): true {
  res.writeHead(status, { location, 'content-length': 9 });
  res.end('redirect!');
  return true;
}

const CREDENTIALS = { authorization: 'Bearer t0ken', cookie: 'sid=1', 'proxy-authorization': 'Basic p' };

function expectRedirectError(err: unknown, text: string): void {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code).to.equal(ErrorCode.Redirect);
  expect((err as Error).message).to.contain(text);
}

for (const { name, create } of TRANSPORTS) {
  describe(`redirects (${name} transport)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    /** A server that records requests and answers by `route(req)`; unknown paths echo what they saw. */
    async function server(route: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<TestServer & { seen: Seen[] }> {
      const seen: Seen[] = [];
      const srv = await startServer(async (req, res) => {
        const body = await readBody(req);
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (route(req, res)) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, body }));
      });
      h.closeWithServers(() => srv.close());
      return Object.assign(srv, { seen });
    }

    it('follows a relative Location on fetch(): redirected, url and the final body, as the platform fetch', async function () {
      const srv = await server((req, res) => {
        if (req.url === '/old') return redirect(res, 302, '/new?x=1');
        return false;
      });
      const mesh = h.mesh(upPolicy(srv.origin));
      const res = await mesh.client('up').fetch('/old');
      expect(res.status).to.equal(200);
      expect(res.redirected).to.equal(true);
      expect(res.url).to.equal('http://up/new?x=1');
      expect(await res.json()).to.deep.equal({ method: 'GET', url: '/new?x=1', body: '' });
      const platform = await fetch(`${srv.origin}/old`);
      expect([platform.status, platform.redirected, platform.url]).to.deep.equal([200, true, `${srv.origin}/new?x=1`]);
      await platform.text();
    });

    it('turns a POST into a GET on 301/302 and anything but HEAD into a GET on 303, dropping the body; keeps both on 307/308', async function () {
      const srv = await server((req, res) => {
        const status = Number(req.url!.slice(1));
        if (status >= 300) return redirect(res, status, '/final');
        return false;
      });
      const mesh = h.mesh(upPolicy(srv.origin, {}, { retry: null }));
      const cases: [string, number, string, string][] = [
        ['POST', 301, 'GET', ''],
        ['POST', 302, 'GET', ''],
        ['PUT', 302, 'PUT', 'payload'],
        ['PUT', 303, 'GET', ''],
        ['POST', 307, 'POST', 'payload'],
        ['PATCH', 308, 'PATCH', 'payload'],
      ];
      for (const [method, status, finalMethod, finalBody] of cases) {
        srv.seen.length = 0;
        const res = await mesh.client('up').fetch(`/${status}`, { method, body: 'payload', headers: { 'content-type': 'text/plain' } });
        expect(await res.json(), `${method} ${status}`).to.deep.equal({ method: finalMethod, url: '/final', body: finalBody });
        const final = srv.seen[1]!;
        expect(final.headers['content-type'], `${method} ${status}`).to.equal(finalBody ? 'text/plain' : undefined);
        expect(final.headers['content-length'], `${method} ${status}`).to.equal(finalBody ? '7' : undefined);
      }
      const head = await mesh.client('up').fetch('/303', { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(srv.seen.at(-1)!.method).to.equal('HEAD');
    });

    it('rejects a 307 for a one-shot stream body with MESHFETCH_REDIRECT, sending it once', async function () {
      const srv = await server((_req, res) => redirect(res, 307, '/again'));
      const mesh = h.mesh(upPolicy(srv.origin, {}, { retry: null }));
      const body = Readable.from([Buffer.from('stream')]);
      const err = await rejection(mesh.client('up').fetch('/', { method: 'POST', body: body as unknown as BodyInit }));
      expectRedirectError(err, 'one-shot');
      expect(srv.seen.map((s) => s.body)).to.deep.equal(['stream']);
    });

    it(`follows ${MAX_REDIRECTS} redirects and rejects the ${MAX_REDIRECTS + 1}st with MESHFETCH_REDIRECT`, async function () {
      const srv = await server((req, res) => {
        const [, limit, n] = req.url!.split('/').map(Number);
        if (n! < limit!) return redirect(res, 302, `/${limit}/${n! + 1}`);
        return false;
      });
      const mesh = h.mesh(upPolicy(srv.origin));
      const res = await mesh.client('up').fetch(`/${MAX_REDIRECTS}/0`);
      expect(await res.json()).to.include({ url: `/${MAX_REDIRECTS}/${MAX_REDIRECTS}` });
      expect(srv.seen).to.have.length(MAX_REDIRECTS + 1);
      srv.seen.length = 0;
      expectRedirectError(await rejection(mesh.client('up').fetch(`/${MAX_REDIRECTS + 1}/0`)), `more than ${MAX_REDIRECTS} redirects`);
      expect(srv.seen).to.have.length(MAX_REDIRECTS + 1);
    });

    it("hands the 3xx up with redirect: 'manual', and rejects with MESHFETCH_REDIRECT with redirect: 'error'", async function () {
      const srv = await server((_req, res) => redirect(res, 302, '/elsewhere'));
      const mesh = h.mesh(upPolicy(srv.origin));
      const manual = await mesh.client('up').fetch('/', { redirect: 'manual' });
      expect([manual.status, manual.redirected, manual.headers.get('location')]).to.deep.equal([302, false, '/elsewhere']);
      expect(await manual.text()).to.equal('redirect!');
      const viaRequest = await mesh.fetch(new Request('http://up/', { redirect: 'manual' }));
      expect(viaRequest.status).to.equal(302);
      await viaRequest.text();
      expectRedirectError(await rejection(mesh.client('up').fetch('/', { redirect: 'error' })), "redirect mode is 'error'");
      expectRedirectError(await rejection(mesh.client('up').get('/', { redirect: 'error' })), "redirect mode is 'error'");
      expect(srv.seen.map((s) => s.url)).to.deep.equal(['/', '/', '/', '/']);
      const bad = await rejection(mesh.client('up').fetch('/', { redirect: 'sideways' as RequestRedirect }));
      expect(bad).to.be.instanceOf(TypeError);
    });

    it('never carries authorization, cookie or proxy-authorization to an origin outside the service, even coming back', async function () {
      const other = await server((req, res) => {
        if (req.url === '/back') return redirect(res, 307, `${home.origin}/home`);
        return false;
      });
      const sibling = await server(() => false);
      const home = await server((req, res) => {
        if (req.url === '/to-other') return redirect(res, 302, `${other.origin}/x`);
        if (req.url === '/round-trip') return redirect(res, 307, `${other.origin}/back`);
        if (req.url === '/to-sibling') return redirect(res, 302, `${sibling.origin}/s`);
        return false;
      });
      const mesh = h.mesh(upPolicy([home.origin, sibling.origin]));
      const headers = { ...CREDENTIALS, 'x-trace': 'abc' };
      // Round-robin would split the first hop over both endpoints: name the home endpoint directly.
      await (await mesh.client('up').fetch(`${home.origin}/to-other`, { headers })).text();
      expect(other.seen[0]!.headers).to.include({ 'x-trace': 'abc' });
      expect(other.seen[0]!.headers).to.not.have.any.keys('authorization', 'cookie', 'proxy-authorization');

      await (await mesh.client('up').fetch(`${home.origin}/round-trip`, { method: 'POST', body: 'b', headers })).text();
      const back = home.seen.at(-1)!;
      expect(back.url).to.equal('/home');
      expect(back.body).to.equal('b');
      expect(back.headers).to.not.have.any.keys('authorization', 'cookie', 'proxy-authorization');

      // Another endpoint of the same service is not another origin for credentials.
      await (await mesh.client('up').fetch(`${home.origin}/to-sibling`, { headers })).text();
      expect(sibling.seen[0]!.headers).to.include({ authorization: 'Bearer t0ken', cookie: 'sid=1' });

      // The platform fetch drops them too.
      await (await fetch(`${home.origin}/to-other`, { headers })).text();
      expect(other.seen.at(-1)!.headers).to.not.have.any.keys('authorization', 'cookie', 'proxy-authorization');
    });

    it('keeps every hop under the one deadline of the call', async function () {
      const srv = await server((req, res) => {
        if (req.url === '/a') return redirect(res, 302, '/b');
        if (req.url === '/b') return true; // never answers
        return false;
      });
      const mesh = h.mesh(upPolicy(srv.origin, {}, { timeout: '300ms', perTryTimeout: '10s', retry: null }));
      const err = await rejection(mesh.client('up').fetch('/a'));
      expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
      expect((err as Error).message).to.contain('deadline');
      const [first, second] = srv.seen.map((s) => Number(s.headers['x-meshfetch-deadline-ms']));
      expect(second).to.be.at.most(first!);
      expect(first).to.be.at.most(300);
    });

    it('rejects a Location that cannot be followed with MESHFETCH_REDIRECT', async function () {
      const srv = await server((req, res) => {
        const locations: Record<string, string> = { '/ftp': 'ftp://example.test/file', '/creds': 'http://user:pw@127.0.0.1:1/', '/bad': 'http://[::1/?token=s3cr3t' };
        return redirect(res, 302, locations[req.url!]!);
      });
      const mesh = h.mesh(upPolicy(srv.origin));
      expectRedirectError(await rejection(mesh.client('up').fetch('/ftp')), 'ftp:');
      expectRedirectError(await rejection(mesh.client('up').fetch('/creds')), 'credentials');
      const bad = await rejection(mesh.client('up').fetch('/bad'));
      expectRedirectError(bad, 'not a URL');
      expect(inspect(bad, { depth: Infinity, showHidden: true })).to.not.include('s3cr3t');
      expect(inspect(await rejection(mesh.client('up').fetch('/creds')), { depth: Infinity })).to.not.include('pw@');
    });

    it("resolves a Location in the server's path space when the endpoint has a base path", async function () {
      const srv = await server((req, res) => {
        const locations: Record<string, string> = { '/api/abs': '/api/new', '/api/rel': 'sibling?x=1', '/api/out': '/elsewhere' };
        const location = locations[req.url!];
        return location === undefined ? false : redirect(res, 302, location);
      });
      const mesh = h.mesh(upPolicy(`${srv.origin}/api`));
      for (const [path, seen, url] of [
        ['/abs', '/api/new', 'http://up/new'],
        ['/rel', '/api/sibling?x=1', 'http://up/sibling?x=1'],
        ['/out', '/elsewhere', `${srv.origin}/elsewhere`],
      ] as const) {
        const res = await mesh.client('up').fetch(path);
        expect(await res.json(), path).to.include({ url: seen });
        expect(res.url, path).to.equal(url);
      }
    });

    it('follows redirects on the JSON helpers, typed routes and mesh.fetch()', async function () {
      const srv = await server((req, res) => {
        if (req.url!.startsWith('/old')) return redirect(res, 308, req.url!.replace('/old', '/new'));
        return false;
      });
      const mesh = h.mesh(upPolicy(srv.origin));
      expect(await mesh.client('up').get('/old/1')).to.deep.equal({ method: 'GET', url: '/new/1', body: '' });
      expect(await mesh.client('up').post('/old/2', { json: { a: 1 } })).to.deep.equal({ method: 'POST', url: '/new/2', body: '{"a":1}' });
      const typed = mesh.client('up', defineService({ routes: { one: { method: 'GET', path: '/old/:id' } } }));
      expect(await typed.one({ params: { id: '3' } })).to.deep.equal({ method: 'GET', url: '/new/3', body: '' });
      const res = await mesh.fetch('http://up/old/4');
      expect([res.redirected, res.url]).to.deep.equal([true, 'http://up/new/4']);
      await res.text();
    });
  });
}

// A redirect hop is a new request of the same call: not a retry (it takes none of the hop's retries and
// pays nothing to the budget), not a new call (it deposits nothing), but the next attempt in number.
describe('redirects and attempt numbers', function () {
  const h = new Harness();
  afterEach(() => h.close());

  const noBackoff = { base: '0ms', max: '0ms' } as const;

  it('numbers the attempts of every hop on from the last (the attempt header, retry events, the call\'s attempts), each hop with its own retries', async function () {
    const srv = await h.server([{ status: 503 }, { status: 302, headers: { location: '/next' } }, { status: 503 }, { status: 200, body: 'done' }]);
    const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null, retry: { attempts: 3, backoff: noBackoff } }));
    const events = recordEvents(mesh);
    const res = await mesh.client('up').fetch('/start');
    expect(await res.text()).to.equal('done');
    expect(srv.requests.map((r) => [r.url, r.attempt])).to.deep.equal([['/start', 1], ['/start', 2], ['/next', 3], ['/next', 4]]);
    expect(events.retry.map((e) => e.attempt)).to.deep.equal([2, 4]);
    expect(events.call.map((e) => e.attempts)).to.deep.equal([4]);
  });

  it('deposits once per call in the retry budget: a redirect hop does not pay for a retry of its own', async function () {
    // ratio 0.5 and no reserve: one call's deposit (0.5) is not enough for a retry; two (a hop counted as a call) would be.
    const srv = await h.server([{ status: 302, headers: { location: '/next' } }, { status: 503 }, { status: 200 }]);
    const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null, retry: { attempts: 3, backoff: noBackoff, budget: { ratio: 0.5, minPerSecond: 0 } } }));
    const events = recordEvents(mesh);
    const res = await mesh.client('up').fetch('/start');
    await res.arrayBuffer();
    expect(res.status).to.equal(503);
    expect(srv.requests.map((r) => [r.url, r.attempt])).to.deep.equal([['/start', 1], ['/next', 2]]);
    expect(events.budgetExhausted).to.deep.equal([{ service: 'up', route: undefined, attempt: 2 }]);
  });

  it('a hop that answers at once still counts every request of the call: an HttpStatusError\'s attempts, and a redirect error\'s, equal the call event\'s', async function () {
    const srv = await h.server([{ status: 302, headers: { location: '/next' } }, { status: 404 }], { status: 302, headers: { location: '/again' } });
    const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null }));
    const events = recordEvents(mesh);
    const notFound = await rejection(mesh.client('up').get('/start'));
    expect(notFound).to.be.instanceOf(HttpStatusError);
    expect((notFound as HttpStatusError).attempts).to.equal(2);
    const loop = await rejection(mesh.client('up').fetch('/loop'));
    expect((loop as MeshError).code).to.equal(ErrorCode.Redirect);
    expect((loop as MeshError).attempts).to.equal(MAX_REDIRECTS + 1);
    expect(srv.requests).to.have.length(2 + MAX_REDIRECTS + 1);
    expect(events.call.map((e) => e.attempts)).to.deep.equal([2, MAX_REDIRECTS + 1]);
  });
});
