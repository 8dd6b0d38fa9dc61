import { once } from 'node:events';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { MeshError } from '../../lib/errors.ts';
import { startServer } from '../helpers/server.ts';
import { Harness, TRANSPORTS, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';

/** Faults at the edges of the retry and body paths, on both transports. */
for (const { name, create } of TRANSPORTS) {
  describe(`edge cases (${name} transport)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('discards a retried 503 whose body stalls, closing its connection, and returns the retry', async function () {
      const sockets: Socket[] = [];
      const srv = await startServer((req, res) => {
        sockets.push(req.socket);
        if (sockets.length === 1) {
          res.writeHead(503, { 'content-length': '100' });
          res.write('partial'); // and stalls
        } else {
          res.end('ok');
        }
      });
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin), { random: () => 0 });
      const res = await mesh.client('up').fetch('/');
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('ok');
      if (!sockets[0]!.closed) await once(sockets[0]!, 'close'); // the stalled body was destroyed, not left to fail later
    });

    it('rejects a request that cannot be sent (a CR/LF in a header) with a TypeError, sending and retrying nothing', async function () {
      const srv = await h.server([], { status: 200 });
      const mesh = h.mesh(upPolicy(srv.origin));
      const events = recordEvents(mesh);
      const err = await rejection(mesh.client('up').fetch('/', { headers: { 'x-bad': 'a\r\nb' } as Record<string, string> }));
      expect(err).to.be.instanceOf(TypeError);
      expect(err).to.not.be.instanceOf(MeshError);
      expect(events.retry).to.deep.equal([]);
      expect(srv.requests.length).to.equal(0);
    });

    it('ends a body read when the caller aborts with a null reason, instead of hanging', async function () {
      const srv = await startServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":'); // and stalls
      });
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin));
      const controller = new AbortController();
      const res = await mesh.client('up').fetch('/', { signal: controller.signal });
      const reading = rejection(res.text());
      controller.abort(null);
      expect(await reading).to.include({ code: 'MESHFETCH_BODY' });
    });

    it('hedges a GET when retries are off (retry: null)', async function () {
      const srv = await h.server([{ hang: true }, { status: 200, body: 'hedged' }]);
      const mesh = h.mesh(upPolicy(srv.origin, { retry: null, hedge: { delay: '30ms' } }));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/')).text()).to.equal('hedged');
      expect(events.hedge.length).to.equal(1);
    });
  });
}

describe('mesh.fetch() input errors', function () {
  it('rejects, rather than throws, for an input that is not a URL', async function () {
    const { createMesh } = await import('../../lib/index.ts');
    const mesh = createMesh({ env: {} });
    const result = mesh.fetch('not a url');
    expect(result).to.be.instanceOf(Promise);
    expect(await rejection(result)).to.be.instanceOf(TypeError);
    await mesh.close();
  });
});
