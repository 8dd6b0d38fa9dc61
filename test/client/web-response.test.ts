import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import { startRawServer } from '../helpers/raw-server.ts';
import { startServer } from '../helpers/server.ts';
import { Harness, TRANSPORTS, nextEvent, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { collectGarbage } from '../helpers/gc.ts';


/** A JSON document larger than one socket read, so that it arrives in several chunks. */
const DOCUMENT = { items: Array.from({ length: 20_000 }, (_, i) => ({ i, name: `item-${i}` })) };
const TEXT = JSON.stringify(DOCUMENT);
const HALF = Math.floor(TEXT.length / 2);

for (const { name, create } of TRANSPORTS) {
  describe(`web Response (${name} transport)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    /** A server that sends headers and half the body, then the rest when `finish()` is called. */
    async function halfThenRest(): Promise<{ origin: string; started: Promise<void>; finish: () => void; socket: () => Socket }> {
      let held: ServerResponse | undefined;
      let socket: Socket | undefined;
      let onStarted!: () => void;
      const started = new Promise<void>((resolve) => (onStarted = resolve));
      const srv = await startServer((req, res) => {
        socket = req.socket;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(TEXT) });
        res.write(TEXT.slice(0, HALF), () => onStarted());
        held = res;
      });
      h.closeWithServers(() => srv.close());
      return { origin: srv.origin, started, finish: () => held!.end(TEXT.slice(HALF)), socket: () => socket! };
    }

    it('a body the caller cancels while it flows, with an Error as the reason, is dropped (no uncaught exception) and the call ends as answered', async function () {
      const srv = await h.server([], { status: 200, body: 'x'.repeat(1 << 20) });
      const mesh = h.mesh(upPolicy(srv.origin));
      const events = recordEvents(mesh);
      const callEnded = nextEvent(mesh, 'call');
      const res = await mesh.client('up').fetch('/x');
      await res.body!.cancel(new Error('not needed after all'));
      await callEnded;
      expect(events.call.map((e) => [e.status, e.outcome, e.errorType])).to.deep.equal([[200, 'success', undefined]]);
      events.dispose();
    });

    describe('a body being read is never released by garbage collection', function () {
      it('await (await mesh.fetch(u)).json() completes across collections', async function () {
        const srv = await halfThenRest();
        const mesh = h.mesh(upPolicy(srv.origin));
        // The Response is unreachable once json() has started; only the read in progress holds the body.
        const parsed = (async () => (await mesh.fetch('http://up/doc')).json())();
        await srv.started;
        await collectGarbage();
        srv.finish();
        expect(await parsed).to.deep.equal(DOCUMENT);
      });

      it('a caller reading res.body chunk by chunk, having dropped the Response, gets every byte', async function () {
        const srv = await halfThenRest();
        const mesh = h.mesh(upPolicy(srv.origin));
        const reader = await (async () => (await mesh.client('up').fetch('/doc')).body!.getReader())();
        const first = await reader.read();
        expect(first.done).to.equal(false);
        await collectGarbage();
        srv.finish();
        const chunks: Uint8Array[] = [first.value!];
        for (let i = 0; i < 10_000; i++) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          if (i % 4 === 0) await collectGarbage(undefined, 1);
        }
        expect(Buffer.concat(chunks).toString()).to.equal(TEXT);
      });

      it('a body kept without its Response can be read later', async function () {
        const srv = await halfThenRest();
        const mesh = h.mesh(upPolicy(srv.origin));
        const { body } = await mesh.client('up').fetch('/doc');
        await srv.started;
        await collectGarbage();
        srv.finish();
        expect(await new Response(body).json()).to.deep.equal(DOCUMENT);
      });
    });

    it('an unread body nobody can reach is released: its connection closes', async function () {
      const srv = await halfThenRest();
      const mesh = h.mesh(upPolicy(srv.origin));
      const status = await (async () => (await mesh.client('up').fetch('/doc')).status)();
      expect(status).to.equal(200);
      await srv.started;
      const socket = srv.socket();
      let socketClosed = socket.closed;
      socket.once('close', () => (socketClosed = true));
      await collectGarbage(() => socketClosed, 200);
      expect(socketClosed, 'the server should have seen the socket close').to.equal(true);
    });

    it('fails the body of a fetch() with MESHFETCH_RESET when a bad chunk came in the packet with the headers', async function () {
      const srv = await startRawServer('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin, {}, { retry: null }));
      const outcome = await mesh.client('up').fetch('/').then((res) => res.text()).then(() => undefined, (err: unknown) => err);
      expect(outcome).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Reset);
    });

    it('returns a status outside 200-599 as the platform fetch does, instead of throwing RangeError', async function () {
      const srv = await startServer((_req, res) => {
        res.statusCode = 600;
        res.end('six hundred');
      });
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin, {}, { retry: null }));
      const res = await mesh.client('up').fetch('/');
      expect(res.status).to.equal(600);
      expect(res.ok).to.equal(false);
      expect(await res.text()).to.equal('six hundred');
      const platform = await fetch(srv.origin);
      expect(platform.status).to.equal(600);
      await platform.text();
    });

    it('reports statusText, url, redirected, type and immutable headers as the platform Response does, clones included', async function () {
      const srv = await startServer((_req, res) => {
        res.writeHead(201, 'Made It', { 'x-a': '1', 'content-type': 'text/plain' });
        res.end('made');
      });
      h.closeWithServers(() => srv.close());
      const mesh = h.mesh(upPolicy(srv.origin));
      const res = await mesh.client('up').fetch('/thing?x=1');
      const platform = await fetch(`${srv.origin}/thing?x=1`);
      for (const r of [res, res.clone()]) {
        expect(r).to.be.instanceOf(Response);
        expect(r.status).to.equal(platform.status);
        expect(r.statusText).to.equal(platform.statusText).and.equal('Made It');
        expect(r.type).to.equal(platform.type);
        expect(r.redirected).to.equal(false);
        expect(r.url).to.equal('http://up/thing?x=1');
        expect(r.headers.get('x-a')).to.equal('1');
        for (const mutate of [() => r.headers.set('x-b', '2'), () => r.headers.append('x-b', '2'), () => r.headers.delete('x-a')]) {
          expect(mutate).to.throw(TypeError);
          expect(() => platform.headers.set('x-b', '2')).to.throw(TypeError);
        }
        expect(r.headers.get('x-a')).to.equal('1');
      }
      expect(await res.text()).to.equal('made');
      await platform.text();
    });
  });
}
