import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import { Harness, TRANSPORTS, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';

function expectMeshError(err: unknown, code: ErrorCode): MeshError {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code, String(err)).to.equal(code);
  return err as MeshError;
}

for (const { name, create } of TRANSPORTS) {
  describe(`mesh.fetch() routing (${name} transport, real loopback)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('matches a service whatever the case of the URL host (hosts are lower-cased; names are lower case)', async function () {
      const srv = await h.server([], { status: 200, body: 'ok' });
      const mesh = h.mesh(upPolicy(srv.origin));
      for (const url of ['http://up/a', 'http://UP/b', 'http://Up/c']) expect(await (await mesh.fetch(url)).text()).to.equal('ok');
      expect(srv.requests.map((r) => r.url)).to.deep.equal(['/a', '/b', '/c']);
      expect(srv.requests.every((r) => r.attempt === 1)).to.equal(true); // through the mesh, not passed through
    });

    it('refuses https://<service>/ when the service has a plain http endpoint, sending nothing', async function () {
      const srv = await h.server([], { status: 200, body: 'ok' });
      const mesh = h.mesh(upPolicy(srv.origin));
      const err = expectMeshError(await rejection(mesh.fetch('https://up/charges')), ErrorCode.Config);
      expect(err.message).to.equal(
        `https://up/ asks for TLS, but services.up has the plain endpoint ${srv.origin}; use http://up/ (the policy's endpoints decide the scheme) or https endpoints`,
      );
      expect(srv.requests).to.deep.equal([]);
    });

    it('refuses a URL with credentials, as the platform fetch does, without quoting the password', async function () {
      const srv = await h.server([], { status: 200, body: 'ok' });
      const mesh = h.mesh(upPolicy(srv.origin));
      const port = new URL(srv.origin).port;
      for (const call of [
        () => mesh.fetch('http://user:s3cret-pw@up/x'),
        () => mesh.fetch(`http://user:s3cret-pw@127.0.0.1:${port}/x`), // an endpoint origin
        () => mesh.client('up').fetch(`http://user:s3cret-pw@127.0.0.1:${port}/x`),
      ]) {
        const err = await rejection(call());
        expect(err, String(err)).to.be.instanceOf(TypeError);
        expect((err as Error).message).to.contain('credentials').and.not.contain('s3cret-pw');
      }
      expect(srv.requests).to.deep.equal([]);
    });

    it('refuses a timeout that is not milliseconds, on the mesh path and the pass-through path', async function () {
      const srv = await h.server([], { status: 200, body: 'ok' });
      const mesh = h.mesh(upPolicy(srv.origin));
      for (const timeout of [Number.NaN, -1, '5s' as unknown as number]) {
        for (const url of ['http://up/x', `http://127.0.0.1:1/x`]) {
          const err = await rejection(mesh.fetch(url, { timeout }));
          expect(err, `${url} ${timeout}`).to.be.instanceOf(TypeError);
          expect((err as Error).message).to.match(/^timeout: expected milliseconds \(a number of at least 0\), got /);
        }
      }
      expect(srv.requests).to.deep.equal([]);
    });
  });
}

// The pass-through path is the platform fetch's, whatever the mesh's transport.
describe('mesh.fetch() pass-through (real loopback)', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('honours timeout on the pass-through path: a URL that is no service times out with MESHFETCH_TIMEOUT', async function () {
    const srv = await h.server([{ hang: true }, { delay: 40, then: { status: 200, body: 'late but fine' } }]);
    const mesh = h.mesh(upPolicy('http://127.0.0.1:1')); // srv is not in policy: passed through
    const err = expectMeshError(await rejection(mesh.fetch(`${srv.origin}/slow`, { timeout: 300 })), ErrorCode.Timeout);
    expect(err.message).to.equal(`fetch ${srv.origin} exceeded its 300ms timeout`);
    await (await srv.request(1)).socketClosed(); // the request was aborted, not left running
    // A timeout longer than a timer can hold means no timer, not one that fires after 1 ms.
    expect(await (await mesh.fetch(`${srv.origin}/slow`, { timeout: 2 ** 31 })).text()).to.equal('late but fine');
    expect(srv.requests[1]!.attempt).to.equal(undefined); // the platform fetch sent it
  });
});

describe('service names are lower case, in policy and in mesh.client()', function () {
  it('refuses a policy service named Payments (mesh.fetch could never match it) and mesh.client("Payments")', async function () {
    const rule = 'lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (it is the host of http://<name>/ URLs, which are case-insensitive)';
    expect(() => createMesh({ env: {}, policy: { apiVersion: 'meshfetch/v1', services: { Payments: { endpoints: ['http://127.0.0.1:1'] } } } })).to.throw(
      MeshError,
      `services.Payments: the name must be ${rule}`,
    );
    const mesh = createMesh({ env: {} });
    try {
      expect(() => mesh.client('Payments')).to.throw(MeshError, `mesh.client("Payments"): a service name is ${rule}`);
      expect(mesh.client('payments').service).to.equal('payments');
    } finally {
      await mesh.close();
    }
  });
});
