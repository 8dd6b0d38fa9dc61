import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { CallContext, MeshRequest, MeshResponse } from '../../lib/pipeline/types.ts';
import type { Transport, TransportFactory } from '../../lib/transport/types.ts';
import { readBytes } from '../../lib/transport/response-body.ts';
import { testContext } from '../helpers/context.ts';
import { rejection } from '../helpers/rejection.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

/** A transport factory with at most `connections` connections per origin. */
export type PooledFactory = (connections: number) => TransportFactory;

/** The bounded connection pool: requests beyond it wait for a connection, and waiting is not the attempt. */
export function describeConnectionPool(pooled: PooledFactory): void {
  describe('connection pool', function () {
    let srv: TestServer;
    let held: ServerResponse[];
    let t: Transport;

    beforeEach(async function () {
      held = [];
      srv = await startServer((req, res) => {
        if (req.url === '/hold') held.push(res);
        else res.end(`ok ${req.url}`);
      });
      t = pooled(1)({});
    });

    afterEach(async function () {
      await srv.close();
      await t.close();
    });

    function call(path: string, ctx: CallContext = testContext(), origin = srv.origin): Promise<MeshResponse> {
      const req: MeshRequest = { method: 'GET', origin, path, headers: {}, body: null };
      return t.request(req, ctx);
    }

    async function text(res: Promise<MeshResponse>): Promise<string> {
      return (await readBytes((await res).body)).toString();
    }

    it('queues a request for a busy connection; its perTryTimeout counts from when it is sent, not while it waits', async function () {
      const arrived = once(srv.server, 'request');
      const holding = call('/hold');
      await arrived;
      const queued = call('/queued', testContext({ policy: { perTryTimeout: 40 } }));
      // Proof that more than 40 ms passed with /queued waiting: a call elsewhere timed out after 40 ms.
      const silent = await startServer(() => {});
      try {
        const other = pooled(1)({});
        const err = await rejection(other.request({ method: 'GET', origin: silent.origin, path: '/', headers: {}, body: null }, testContext({ policy: { perTryTimeout: 40 } })));
        expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
        await silent.close();
        await other.close();
      } finally {
        if (silent.server.listening) await silent.close();
      }
      held[0]!.end('held');
      expect(await text(holding)).to.equal('held');
      expect(await text(queued)).to.equal('ok /queued');
      expect(srv.requests.map((r) => r.url)).to.deep.equal(['/hold', '/queued']);
      expect(new Set(srv.requests.map((r) => r.socket)).size).to.equal(1); // one connection, queued on
    });

    it('rejects a queued request at once with the reason when its call is aborted (the deadline bounds the wait)', async function () {
      const arrived = once(srv.server, 'request');
      const holding = call('/hold');
      await arrived;
      const controller = new AbortController();
      const queued = call('/queued', testContext({ signal: controller.signal }));
      const reason = new MeshError(ErrorCode.Timeout, 'call deadline');
      controller.abort(reason);
      expect(await rejection(queued)).to.equal(reason);
      held[0]!.end('held');
      expect(await text(holding)).to.equal('held');
      expect(await text(call('/after'))).to.equal('ok /after');
      expect(srv.requests.map((r) => r.url)).to.deep.equal(['/hold', '/after']); // the aborted one was never sent
    });

    it('still times an attempt out once it is sent', async function () {
      const err = await rejection(call('/hold', testContext({ policy: { perTryTimeout: 30 } })));
      expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Timeout);
      expect(srv.requests).to.have.length(1);
    });
  });
}
