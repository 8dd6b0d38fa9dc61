import { once } from 'node:events';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { undiciTransport } from '../../lib/transport/undici.ts';
import { testContext } from '../helpers/context.ts';
import { startServer } from '../helpers/server.ts';
import { describeTransport, readAll } from './suite.ts';

describeTransport('undici', undiciTransport());

describe('transport: undici (one connection per origin)', function () {
  it('sends sequential requests over the one keep-alive connection, and a body destroyed unread frees it', async function () {
    const srv = await startServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': 4 * 1024 * 1024 });
        res.write(Buffer.alloc(256 * 1024)); // and never finishes
      } else {
        res.end('ok');
      }
    });
    const t = undiciTransport({ connections: 1 })({});
    try {
      const call = (path: string) => t.request({ method: 'GET', origin: srv.origin, path, headers: {}, body: null }, testContext());
      for (const path of ['/1', '/2']) expect((await readAll((await call(path)).body)).toString()).to.equal('ok');
      expect(srv.requests[1]!.socket).to.equal(srv.requests[0]!.socket);
      const big = await call('/big');
      big.body.destroy();
      // With one connection, this completes only if destroying the unread body released it.
      expect((await readAll((await call('/3')).body)).toString()).to.equal('ok');
      const sockets = new Set<Socket>(srv.requests.map((r) => r.socket));
      expect(sockets.size).to.equal(2); // the destroyed body's connection was not put back in the pool
      expect(srv.requests[2]!.socket.destroyed).to.equal(true);
    } finally {
      await srv.close();
      await t.close();
    }
  });
});

describe('transport: undici (a request queued for a busy connection)', function () {
  it('rejects at once when aborted, or when its perTryTimeout passes, while waiting for a connection', async function () {
    let first: (() => void) | undefined;
    const srv = await startServer((req, res) => {
      if (req.url === '/hold') first = () => res.end('held');
      else res.end('ok');
    });
    const t = undiciTransport({ connections: 1 })({});
    try {
      const call = (path: string, ctx = testContext()) => t.request({ method: 'GET', origin: srv.origin, path, headers: {}, body: null }, ctx);
      const arrived = once(srv.server, 'request');
      const holding = call('/hold');
      await arrived;

      const controller = new AbortController();
      const queued = call('/queued', testContext({ signal: controller.signal }));
      const reason = new Error('caller gave up');
      controller.abort(reason);
      expect(await queued.then(() => undefined, (err: unknown) => err)).to.equal(reason);

      const timedOut = await call('/queued-too', testContext({ policy: { perTryTimeout: 50 } })).then(() => undefined, (err: unknown) => err);
      expect(timedOut).to.include({ code: 'MESHFETCH_TIMEOUT', retryable: true });

      first!();
      expect((await readAll((await holding).body)).toString()).to.equal('held');
      expect((await readAll((await call('/after')).body)).toString()).to.equal('ok');
      expect(srv.requests.map((r) => r.url)).to.deep.equal(['/hold', '/after']); // the aborted ones were never sent
    } finally {
      await srv.close();
      await t.close();
    }
  });
});
