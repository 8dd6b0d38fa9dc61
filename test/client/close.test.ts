import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import { Harness, TRANSPORTS, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

function expectClosed(err: unknown): void {
  expect(err, String(err)).to.be.instanceOf(MeshError);
  expect((err as MeshError).code, String(err)).to.equal(ErrorCode.Closed);
}

for (const { name, create } of TRANSPORTS) {
  describe(`mesh.close() (${name} transport)`, function () {
    const h = new Harness(create);
    let srv: TestServer;
    let held: ServerResponse[];
    afterEach(() => h.close());

    beforeEach(async function () {
      held = [];
      srv = await startServer((req, res) => {
        if (req.url === '/hold') held.push(res);
        else if (req.url === '/partial') {
          res.writeHead(200, { 'content-length': 100 });
          res.write('part');
        } else res.end('ok');
      });
      h.closeWithServers(() => srv.close());
    });

    it('aborts a call still waiting when the grace period is over, with MESHFETCH_CLOSED, long before its timeout', async function () {
      const mesh = h.mesh(upPolicy(srv.origin, {}, { timeout: '60s', perTryTimeout: '60s' }));
      const arrived = once(srv.server, 'request');
      const pending = rejection(mesh.client('up').fetch('/hold'));
      await arrived;
      await mesh.close({ grace: 50 });
      const err = await pending;
      expectClosed(err);
      expect(err).to.include({ service: 'up' });
    });

    it('gives a call queued in its bulkhead and a call between retries their grace period too', async function () {
      const faults = await h.server([{ delay: 50, then: { status: 503 } }]);
      const mesh = h.mesh(upPolicy(faults.origin, { concurrency: { max: 1, queue: 1 }, retry: { attempts: 2, backoff: { base: '1ms', max: '1ms' } } }));
      const client = mesh.client('up');
      const retried = client.fetch('/retried');
      const queued = client.fetch('/queued');
      await faults.request(1);
      await mesh.close({ grace: 5_000 });
      // Closing did not refuse the retry's second attempt nor the queued call: both were under way.
      expect((await retried).status).to.equal(200);
      expect((await queued).status).to.equal(200);
      expect(faults.requests.map((r) => r.url)).to.deep.equal(['/retried', '/retried', '/queued']);
    });

    it('lets a call in flight finish within the grace period, refusing new calls meanwhile', async function () {
      const mesh = h.mesh(upPolicy(srv.origin));
      const arrived = once(srv.server, 'request');
      const pending = mesh.client('up').get('/hold', { headers: { accept: 'text/plain' } }).catch((e: unknown) => e);
      await arrived;
      const closing = mesh.close();
      expectClosed(await rejection(mesh.client('up').fetch('/new')));
      held[0]!.writeHead(200, { 'content-type': 'application/json' }).end('"answered"');
      expect(await pending).to.equal('answered');
      await closing;
      expect(srv.requests.map((r) => r.url)).to.deep.equal(['/hold']);
    });

    it('counts an unread body as in flight: after the grace period it fails with MESHFETCH_CLOSED', async function () {
      const mesh = h.mesh(upPolicy(srv.origin));
      const res = await mesh.client('up').fetch('/partial');
      const socketClosed = once(srv.requests[0]!.socket, 'close');
      await mesh.close({ grace: 20 });
      expectClosed(await rejection(res.text()));
      await socketClosed;
    });

    it('returns at once when nothing is in flight, and a second close() returns the same promise', async function () {
      const mesh = h.mesh(upPolicy(srv.origin));
      expect(await (await mesh.client('up').fetch('/')).text()).to.equal('ok');
      const first = mesh.close({ grace: 60_000 });
      expect(mesh.close()).to.equal(first);
      await first;
    });

    it('rejects a grace that is not milliseconds with MESHFETCH_CONFIG, and stays open', async function () {
      const mesh = h.mesh(upPolicy(srv.origin));
      for (const grace of [-1, Number.NaN, '5s' as unknown as number]) {
        const err = await rejection(mesh.close({ grace }));
        expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Config);
        expect((err as Error).message).to.contain('grace');
      }
      expect(await (await mesh.client('up').fetch('/')).text()).to.equal('ok');
    });
  });
}
