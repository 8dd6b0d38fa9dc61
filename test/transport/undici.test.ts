import type { Socket } from 'node:net';
import { expect } from 'chai';
import { undiciTransport } from '../../lib/transport/undici.ts';
import { testContext } from '../helpers/context.ts';
import { startServer } from '../helpers/server.ts';
import { describeTransport, readAll } from './suite.ts';

describeTransport('undici', undiciTransport(), (connections) => undiciTransport({ connections }));

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
