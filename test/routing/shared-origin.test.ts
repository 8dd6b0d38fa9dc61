import { expect } from 'chai';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { Harness } from '../helpers/fault-server.ts';
import type { PolicyDocument } from '../../lib/policy/types.ts';

describe('two services behind one origin (a gateway), told apart by base path', function () {
  const h = new Harness();
  afterEach(() => h.close());

  const gateway = (origin: string): PolicyDocument => ({
    apiVersion: 'meshfetch/v1',
    services: {
      orders: { endpoints: [`${origin}/orders`] },
      'orders-admin': { endpoints: [`${origin}/orders/admin`] },
      users: { endpoints: [`${origin}/users`] },
    },
  });

  it('loads, and both services are callable by name', async () => {
    const gw = await h.server();
    const mesh = h.mesh(gateway(gw.origin));
    expect((await mesh.client('orders').fetch('/1')).status).to.equal(200);
    expect((await mesh.client('users').fetch('/2')).status).to.equal(200);
    expect(gw.requests.map((r) => r.url)).to.deep.equal(['/orders/1', '/users/2']);
  });

  it('gives an absolute URL to the service with the longest matching base path', async () => {
    const gw = await h.server();
    const seen: string[] = [];
    const mesh = h.mesh(gateway(gw.origin), {
      middleware: [{ name: 'record', use: (next) => (req, ctx) => (seen.push(ctx.service), next(req, ctx)) }],
    });
    for (const path of ['/orders/7', '/orders/admin/7', '/users/7', '/orders', '/ordersx/7']) {
      const res = await mesh.fetch(`${gw.origin}${path}`);
      await res.arrayBuffer();
    }
    // "/ordersx" is under no base path: it is not a call to a known service and goes out ungoverned.
    expect(seen).to.deep.equal(['orders', 'orders-admin', 'users', 'orders']);
    expect(gw.requests.map((r) => r.url)).to.deep.equal(['/orders/7', '/orders/admin/7', '/users/7', '/orders', '/ordersx/7']);
  });

  it('when two services have the same origin and base path, the first listed wins and it is logged once', async () => {
    const gw = await h.server();
    const seen: string[] = [];
    const mesh = h.mesh(
      { apiVersion: 'meshfetch/v1', services: { first: { endpoints: [gw.origin] }, second: { endpoints: [`${gw.origin}/`] } } },
      { middleware: [{ name: 'record', use: (next) => (req, ctx) => (seen.push(ctx.service), next(req, ctx)) }] },
    );
    const warnings: unknown[] = [];
    mesh.logger.warn = (message, fields) => warnings.push({ message, ...fields });
    for (let i = 0; i < 3; i++) await (await mesh.fetch(`${gw.origin}/x`)).arrayBuffer();
    expect(seen).to.deep.equal(['first', 'first', 'first']);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.deep.include({ origin: gw.origin, chosen: 'first', alsoMatched: 'second' });
  });

  it('orders the owners of an origin by base path, longest first', () => {
    const policy = compilePolicy(gateway('http://gw:8080'), 'test');
    expect(policy.byOrigin.get('http://gw:8080')!.map((o) => [o.service.name, o.basePath])).to.deep.equal([
      ['orders-admin', '/orders/admin'],
      ['orders', '/orders'],
      ['users', '/users'],
    ]);
  });
});
