import { expect } from 'chai';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { resolveCall } from '../../lib/policy/resolve.ts';
import type { HeaderRecord } from '../../lib/pipeline/types.ts';
import { Harness } from '../helpers/fault-server.ts';

const V1 = 'meshfetch/v1' as const;

describe('route matching: headers, query, prefix, several blocks, Gateway API precedence', () => {
  const policy = compilePolicy(
    {
      apiVersion: V1,
      services: {
        payments: {
          endpoints: ['http://127.0.0.1:1'],
          routes: [
            { name: 'any', match: { prefix: '/' } },
            { name: 'beta-prefix', match: { prefix: '/beta' } },
            { name: 'beta-v2', match: { prefix: '/beta/v2' } },
            { name: 'charge', match: { path: '/charges/:id' } },
            { name: 'charge-beta', match: [{ path: '/charges/:id', headers: { 'X-Beta': 'true' } }, { prefix: '/beta/', query: { v: { regex: '^2' } } }] },
            { name: 'charge-beta-eu', match: { path: '/charges/:id', headers: { 'x-beta': 'true', 'x-region': { regex: '^eu-' } } } },
            { name: 'charge-post', match: { method: 'POST', path: '/charges/:id' } },
          ],
        },
      },
    },
    'test',
  );
  const route = (method: string, path: string, headers: HeaderRecord = {}): string | undefined =>
    resolveCall(policy, 'payments', undefined, method, path, headers).route;

  it('an exact path (template) wins over any prefix, whatever the document order', () => {
    expect(route('GET', '/charges/1')).to.equal('charge');
  });

  it('a longer prefix wins over a shorter one, at a "/" boundary', () => {
    expect(route('GET', '/beta/v2/x')).to.equal('beta-v2');
    expect(route('GET', '/beta/v1')).to.equal('beta-prefix');
    expect(route('GET', '/beta')).to.equal('beta-prefix');
    expect(route('GET', '/betamax')).to.equal('any');
  });

  it('more header matches win; a header name matches case-insensitively, its value exactly or by regex', () => {
    expect(route('GET', '/charges/1', { 'x-beta': 'true' })).to.equal('charge-beta');
    expect(route('GET', '/charges/1', { 'x-beta': 'true', 'x-region': 'eu-west-1' })).to.equal('charge-beta-eu');
    expect(route('GET', '/charges/1', { 'x-beta': 'true', 'x-region': 'us-east-1' })).to.equal('charge-beta');
    expect(route('GET', '/charges/1', { 'x-beta': 'TRUE' })).to.equal('charge');
    expect(route('GET', '/charges/1', { 'x-beta': ['no', 'true'] })).to.equal('charge-beta');
  });

  it('a method match wins over a block without one, at the same path', () => {
    expect(route('POST', '/charges/1')).to.equal('charge-post');
    expect(route('POST', '/charges/1', { 'x-beta': 'true' })).to.equal('charge-post');
  });

  it('any block of a route may match: the second block of charge-beta matches by prefix and query', () => {
    expect(route('GET', '/beta/x?v=2.1')).to.equal('charge-beta');
    expect(route('GET', '/beta/x?v=1')).to.equal('beta-prefix');
    expect(route('GET', '/beta/x?w=2')).to.equal('beta-prefix');
  });

  it('a regex never runs on a value longer than 1024 characters (it does not match)', () => {
    expect(route('GET', '/charges/1', { 'x-beta': 'true', 'x-region': `eu-${'a'.repeat(2_000)}` })).to.equal('charge-beta');
  });

  it('routes a real call by its headers to the matching route (its policy and name)', async () => {
    const h = new Harness();
    try {
      const up = await h.server([{ status: 503 }, { status: 503 }], { status: 200, body: 'ok' });
      const mesh = h.mesh({
        apiVersion: V1,
        services: {
          up: {
            endpoints: [up.origin],
            retry: null,
            routes: [{ name: 'beta', match: { prefix: '/', headers: { 'x-beta': 'true' } }, retry: { attempts: 3 } }],
          },
        },
      });
      const routes: (string | undefined)[] = [];
      mesh.on('call', (e) => routes.push(e.route));
      const plain = await mesh.client('up').fetch('/a');
      await plain.arrayBuffer();
      expect(plain.status).to.equal(503);
      const beta = await mesh.client('up').fetch('/a', { headers: { 'X-Beta': 'true' } });
      await beta.arrayBuffer();
      expect(beta.status).to.equal(200);
      expect(routes).to.deep.equal([undefined, 'beta']);
      expect(up.requests.length).to.equal(3);
    } finally {
      await h.close();
    }
  });
});

describe('routing validation: a bad document names the path and the policy in force stays', () => {
  const base = (service: Record<string, unknown>, others: Record<string, unknown> = {}) => ({
    apiVersion: V1,
    services: { a: { endpoints: ['http://127.0.0.1:1'], ...service }, b: { endpoints: ['http://127.0.0.1:2'] }, ...others },
  });
  const problems = (doc: unknown): string => {
    try {
      compilePolicy(doc, 'test');
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected the document to be refused');
  };

  it('an unknown split backend, route backend or mirror service', () => {
    expect(problems(base({ split: [{ service: 'a', weight: 1 }, { service: 'c', weight: 1 }] }))).to.include('services.a.split[1].service: unknown service "c"');
    expect(problems(base({ routes: [{ name: 'r', match: { prefix: '/' }, backend: 'bb' }] }))).to.match(/services\.a\.routes\[0\]\.backend: unknown service "bb"; it must be one of the policy's services; did you mean "b"\?/);
    expect(problems(base({ mirror: { service: 'zz' } }))).to.include('services.a.mirror.service: unknown service "zz"');
  });

  it('weights that are all 0, a negative weight, a percent outside 0–100', () => {
    expect(problems(base({ split: [{ service: 'a', weight: 0 }, { service: 'b', weight: 0 }] }))).to.include('services.a.split: every weight is 0');
    expect(problems(base({ split: [{ service: 'b', weight: -1 }] }))).to.include('services.a.split[0].weight: expected a number from 0 to 1000000');
    expect(problems(base({ fault: { abort: { percent: 101, status: 503 } } }))).to.include('services.a.fault.abort.percent: expected a number from 0 to 100');
    expect(problems(base({ mirror: { service: 'b', percent: -5 } }))).to.include('services.a.mirror.percent: expected a number from 0 to 100');
  });

  it('a regex that does not compile, or that could backtrack exponentially', () => {
    const route = (headers: unknown) => base({ routes: [{ name: 'r', match: { prefix: '/', headers } }] });
    expect(problems(route({ 'x-a': { regex: '(' } }))).to.match(/services\.a\.routes\[0\]\.match\.headers\.x-a\.regex: "\(" does not compile/);
    expect(problems(route({ 'x-a': { regex: '^(a+)+$' } }))).to.include('services.a.routes[0].match.headers.x-a.regex: "^(a+)+$" a repeated group');
    expect(problems(route({ 'x-a': { regex: '(a|aa)*' } }))).to.include('a repeated group');
    expect(problems(route({ 'x-a': { regex: '(a)\\1' } }))).to.include('backreferences are not allowed');
    expect(problems(route({ 'x-a': { regex: '(?=a)a' } }))).to.include('lookahead and lookbehind are not allowed');
    expect(problems(route({ 'x-a': { regex: '((ab)*c)+' } }))).to.include('a repeated group');
    expect(problems(route({ 'x-a': { regex: '(a{2,})*' } }))).to.include('a repeated group');
    expect(problems(route({ 'x-a': { regex: 'a'.repeat(257) } }))).to.include('longer than 256 characters');
    expect(() => compilePolicy(route({ 'x-a': { regex: '^(ab){3}[+*]$' } }), 'test'), 'a fixed repeat, quantifiers inside a class').not.to.throw();
    expect(() => compilePolicy(route({ 'x-a': { regex: '^(eu|us)-[a-z]+-[0-9]+$' } }), 'test')).not.to.throw();
  });

  it('a split that loops (a → b → a); a split naming itself is not a loop', () => {
    const looping = base({ split: [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }] }, { b: { endpoints: ['http://127.0.0.1:2'], split: [{ service: 'a', weight: 1 }] } });
    expect(problems(looping)).to.include('services.a.split: the split loops: a → b → a');
    expect(() => compilePolicy(base({ split: [{ service: 'a', weight: 9 }, { service: 'b', weight: 1 }] }), 'test')).not.to.throw();
  });

  it('a fault that gives neither abort nor delay; a service mirroring to itself', () => {
    expect(problems(base({ fault: {} }))).to.include('services.a.fault: give abort, delay or both');
    expect(problems(base({ mirror: { service: 'a' } }))).to.include('services.a.mirror.service: a service cannot mirror its own traffic to itself');
  });

  it('path and prefix together, split and backend together', () => {
    expect(problems(base({ routes: [{ name: 'r', match: { path: '/x', prefix: '/x' } }] }))).to.include('services.a.routes[0].match: set path or prefix, not both');
    expect(problems(base({ routes: [{ name: 'r', match: { prefix: '/' }, backend: 'b', split: [{ service: 'b', weight: 1 }] }] }))).to.include('services.a.routes[0]: set split or backend, not both');
  });

  it('setPolicy() refuses a bad split and the old policy stays in force', async () => {
    const h = new Harness();
    try {
      const a = await h.server();
      const mesh = h.mesh({ apiVersion: V1, services: { a: { endpoints: [a.origin] } } });
      expect(() => mesh.setPolicy(base({ split: [{ service: 'nope', weight: 1 }] }))).to.throw(/services\.a\.split\[0\]\.service: unknown service "nope"/);
      expect((await mesh.client('a').fetch('/x')).status).to.equal(200);
      expect(a.requests.length).to.equal(1);
    } finally {
      await h.close();
    }
  });
});
