import { expect } from 'chai';
import got from 'got';
import { createMesh, ErrorCode } from '../../lib/index.ts';
import type { MeshError } from '../../lib/index.ts';
import { gotTransport } from '../../lib/transport/got.ts';
import { rejection } from '../helpers/rejection.ts';
import { sendJson, startServer } from '../helpers/server.ts';

/**
 * Which of the user's got hooks run when got is the mesh's transport: docs/architecture.md#got-hooks lists
 * exactly these, and this test keeps the list true.
 */
describe('transport: got hooks under the mesh', function () {
  it('runs init, beforeRequest and beforeError; never afterResponse, beforeRetry or beforeRedirect', async function () {
    const ran: string[] = [];
    const instance = got.extend({
      hooks: {
        init: [() => void ran.push('init')],
        beforeRequest: [() => void ran.push('beforeRequest')],
        beforeRedirect: [() => void ran.push('beforeRedirect')],
        beforeRetry: [() => void ran.push('beforeRetry')],
        afterResponse: [(response) => (ran.push('afterResponse'), response)],
        beforeError: [(error) => (ran.push('beforeError'), Object.assign(error, { message: `seen by the hook: ${error.message}` }))],
      },
    });
    const server = await startServer((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: '/ok' }).end();
      else if (req.url === '/reset') req.socket.destroy();
      else if (req.url === '/ok') sendJson(res, 200, {});
      else sendJson(res, 503, {});
    });
    const mesh = createMesh({
      env: {},
      random: () => 0,
      transport: gotTransport({ got: instance }),
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [server.origin], retry: { attempts: 2 } } } },
    });
    try {
      // got itself runs init hooks when the transport extends the instance.
      expect(new Set(ran)).to.deep.equal(new Set(['init']));
      ran.length = 0;
      const client = mesh.client('payments');
      await rejection(client.get('/unavailable')); // 503, retried once by the mesh: two attempts
      expect(ran).to.deep.equal(['init', 'beforeRequest', 'init', 'beforeRequest']);
      ran.length = 0;
      // got follows no redirect (beforeRedirect never runs); the mesh's redirect layer does, as a new attempt.
      expect((await client.fetch('/moved', { redirect: 'manual' })).status).to.equal(302);
      expect(ran).to.deep.equal(['init', 'beforeRequest']);
      ran.length = 0;
      const followed = await client.fetch('/moved');
      expect([followed.redirected, followed.url]).to.deep.equal([true, 'http://payments/ok']);
      await followed.text();
      expect(ran).to.deep.equal(['init', 'beforeRequest', 'init', 'beforeRequest']);
      ran.length = 0;
      const reset = (await rejection(client.get('/reset'))) as MeshError; // a reset, retried once
      expect(reset.code).to.equal(ErrorCode.Reset);
      // The cause is a scrubbed copy of the error the hook returned (never got's options with the headers).
      expect((reset.cause as Error).message).to.match(/^seen by the hook: /);
      expect(ran).to.deep.equal(['init', 'beforeRequest', 'beforeError', 'init', 'beforeRequest', 'beforeError']);
    } finally {
      await mesh.close();
      await server.close();
    }
  });
});
