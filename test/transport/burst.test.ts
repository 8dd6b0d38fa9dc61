import type { Socket } from 'node:net';
import { expect } from 'chai';
import { DEFAULT_CONNECTIONS_PER_ORIGIN } from '../../lib/transport/types.ts';
import { Harness, TRANSPORTS, upPolicy } from '../helpers/fault-server.ts';
import { startServer } from '../helpers/server.ts';

const BURST = 2_000;

for (const { name, create } of TRANSPORTS) {
  describe(`a burst of ${BURST} concurrent calls to one healthy origin (${name} transport, default policy)`, function () {
    this.timeout(30_000);
    const h = new Harness(create);
    afterEach(() => h.close());

    // The pool suite proves, deterministically, that queueing is not counted as the attempt. Here the
    // whole burst must succeed; a per-try timeout retried on a machine busy with other work is allowed.
    it('all succeed, over no more connections at once than the default pool allows', async function () {
      const srv = await startServer((req, res) => void res.end(req.url));
      h.closeWithServers(() => srv.close());
      // Connections open at once, at most, as the server sees them. A connection a per-try timeout
      // destroyed is replaced at once, and the server may see the new one before the old one's close:
      // each retried attempt (a request beyond BURST) allows one such overlap.
      let open = 0;
      let mostOpen = 0;
      srv.server.on('connection', (socket: Socket) => {
        mostOpen = Math.max(mostOpen, ++open);
        socket.once('close', () => open--);
      });
      // Defaults throughout: the bulkhead admits 1024 and queues the rest; the pool under it opens at
      // most its default number of connections.
      const mesh = h.mesh(upPolicy(srv.origin));
      const client = mesh.client('up');
      const calls = await Promise.allSettled(Array.from({ length: BURST }, async (_, i) => (await client.fetch(`/${i}`)).text()));
      const failures = calls.flatMap((c) => (c.status === 'rejected' ? [String(c.reason)] : []));
      expect(failures.slice(0, 3), `${failures.length} of ${BURST} failed`).to.deep.equal([]);
      expect(calls.map((c) => (c as PromiseFulfilledResult<string>).value)).to.deep.equal(Array.from({ length: BURST }, (_, i) => `/${i}`));
      expect(srv.requests.length).to.be.at.least(BURST);
      expect(mostOpen).to.be.at.most(DEFAULT_CONNECTIONS_PER_ORIGIN + (srv.requests.length - BURST));
    });
  });
}
