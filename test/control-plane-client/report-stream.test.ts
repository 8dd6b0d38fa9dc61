import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import { ReportStream } from '../../lib/control-plane-client/report-stream.ts';
import { REPORT_STREAM_TYPE, REPORT_VERSION } from '../../lib/telemetry/report.ts';
import { generateCerts } from '../helpers/certs.ts';
import { RecordingLogger, startTestControlPlane } from '../helpers/control-plane.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const line = (instance: string): string => `${JSON.stringify({ v: REPORT_VERSION, service: 'checkout', instance, edges: [] })}\n`;

/** A replica that records each stream's lines; `behave` decides what it does with each request. */
class Replica extends EventEmitter {
  readonly streams: { lines: string[]; ended: boolean; type: string | undefined }[] = [];
  server!: TestServer;
  behave: (req: IncomingMessage, res: ServerResponse, index: number) => 'read' | 'ignore' = () => 'read';
  answerAtEnd = true;

  async start(): Promise<this> {
    this.server = await startServer((req, res) => {
      const index = this.streams.length;
      const stream = { lines: [] as string[], ended: false, type: req.headers['content-type'] };
      this.streams.push(stream);
      this.emit('stream');
      req.on('error', () => undefined); // a stream cut by the client ends "aborted"
      if (this.behave(req, res, index) === 'ignore') return;
      let partial = '';
      req.setEncoding('utf8').on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop()!;
        for (const part of parts) {
          stream.lines.push(JSON.parse(part).instance as string);
          this.emit('line');
        }
      });
      req.on('end', () => {
        stream.ended = true;
        this.emit('end');
        if (this.answerAtEnd) res.writeHead(204).end();
      });
    });
    return this;
  }

  /** Waits until `count` lines have arrived in all. */
  async lines(count: number): Promise<void> {
    while (this.streams.reduce((n, s) => n + s.lines.length, 0) < count) await once(this, 'line');
  }
}

describe('ReportStream (one replica, real sockets)', () => {
  let replica: Replica;
  let agent: Agent;
  let logger: RecordingLogger;
  const drops = (): string[] => logger.lines.filter((l) => l.message === 'stats report dropped').map((l) => String(l.fields?.error));

  beforeEach(async () => {
    replica = await new Replica().start();
    agent = new Agent({ keepAlive: true });
    logger = new RecordingLogger();
  });
  afterEach(async () => {
    agent.destroy();
    await replica.server.close();
  });

  /** Waits until the replica has no connection open (a cut stream's socket closes with an error: not a rejection here). */
  const socketsClosed = async (): Promise<void> => {
    while (replica.server.sockets.size > 0) await new Promise((resolve) => [...replica.server.sockets][0]!.once('close', resolve));
  };
  const streamTo = (origin: string, interval: number, maxAge: number): ReportStream =>
    new ReportStream({ url: new URL('/v1/reports', origin), agent, interval, logger, maxAge });

  it('carries every report due within its max age on one request, ends with the last of them, and the next opens a new stream', async () => {
    // An interval of 1 s and a max age of 3 s: three reports a stream (counted, not timed).
    const stream = streamTo(replica.server.origin, 1_000, 3_000);
    for (let i = 0; i < 5; i++) {
      stream.send(line(`r-${i}`));
      await replica.lines(i + 1);
      if (i === 2) while (!replica.streams[0]!.ended) await once(replica, 'end');
    }
    expect(replica.streams.map((s) => s.lines)).to.deep.equal([['r-0', 'r-1', 'r-2'], ['r-3', 'r-4']]);
    expect(replica.streams.map((s) => s.type)).to.deep.equal([REPORT_STREAM_TYPE, REPORT_STREAM_TYPE]);
    expect(replica.streams[1]!.ended).to.equal(false);
    stream.close();
    expect(drops()).to.deep.equal([]);
  });

  it('with an interval as long as its max age, sends each report as a request of its own, ended at once', async () => {
    const stream = streamTo(replica.server.origin, 60_000, 60_000);
    for (let i = 0; i < 2; i++) {
      stream.send(line(`r-${i}`));
      while (replica.streams[i]?.ended !== true) await once(replica, 'end');
    }
    expect(replica.streams.map((s) => [s.lines, s.ended])).to.deep.equal([[['r-0'], true], [['r-1'], true]]);
    stream.close();
    expect(drops()).to.deep.equal([]);
  });

  it('with an interval longer than a minute, sends each report alone whatever the max age: a stream kept open would be cut as idle', async () => {
    const stream = streamTo(replica.server.origin, 61_000, 3_600_000);
    stream.send(line('r-0'));
    while (replica.streams[0]?.ended !== true) await once(replica, 'end');
    expect(replica.streams.map((s) => [s.lines, s.ended])).to.deep.equal([[['r-0'], true]]);
    stream.close();
  });

  it('logs a refusal with the control plane\'s own message, and sends the next report on a new stream (a real control plane)', async () => {
    const control = await startTestControlPlane({ apiVersion: 'meshfetch/v1', services: {} }, { logLevel: 'debug' });
    try {
      const stream = streamTo(control.url, 60_000, 600_000);
      const dropped = logger.next('stats report dropped');
      stream.send(line('bad id!'));
      expect(String((await dropped)?.error)).to.equal('report stream answered HTTP 400: report 1 on this stream: instance: expected an instance id (letters, digits, ".", "_", ":", "-")');
      const taken = control.logger.next('stats report');
      stream.send(line('i-2'));
      expect((await taken)?.instance).to.equal('i-2');
      stream.close();
    } finally {
      await control.close();
    }
  });

  it('a replica that drops the connection: that report is logged as dropped, and the next goes on a new connection', async () => {
    replica.behave = (req, _res, index) => {
      if (index === 0) req.once('data', () => req.socket.destroy());
      return index === 0 ? 'ignore' : 'read';
    };
    const stream = streamTo(replica.server.origin, 60_000, 600_000);
    const dropped = logger.next('stats report dropped');
    stream.send(line('r-0'));
    expect(String((await dropped)?.error)).to.match(/socket hang up|ECONNRESET|EPIPE/);
    stream.send(line('r-1'));
    await replica.lines(1);
    expect(replica.streams.map((s) => s.lines)).to.deep.equal([[], ['r-1']]);
    stream.close();
  });

  it('a replica that reads nothing: once a report has not left when the next is due, that stream is cut and the next goes on a new one', async () => {
    replica.behave = (req, _res, index) => {
      if (index === 0) req.pause();
      return index === 0 ? 'ignore' : 'read';
    };
    const stream = streamTo(replica.server.origin, 60_000, 1_000 * 60_000); // a stream long enough for every report below
    const big = `${JSON.stringify({ instance: 'big', pad: 'x'.repeat(256 * 1_024) })}\n`;
    // Bounded: socket buffers on loopback hold a few MiB, far below 400 of these.
    for (let i = 0; i < 400 && drops().length === 0; i++) {
      stream.send(big);
      await turn();
    }
    while (replica.streams.length < 2) await once(replica, 'stream');
    expect(drops()).to.deep.equal(['the replica has not taken the previous report']);
    await replica.lines(1);
    expect(replica.streams[1]!.lines[0]).to.equal('big');
    stream.close();
  });

  it('an answer that does not come after the end: the stream is cut an interval later, and logged', async () => {
    replica.answerAtEnd = false;
    const stream = streamTo(replica.server.origin, 50, 0);
    const dropped = logger.next('stats report dropped');
    stream.send(line('r-0'));
    expect(String((await dropped)?.error)).to.equal('report stream: no answer after its end');
    expect(replica.streams[0]).to.deep.include({ lines: ['r-0'], ended: true });
    while (replica.server.sockets.size > 0) await once([...replica.server.sockets][0]!, 'close');
  });

  it('counts its reports rather than reading a clock: a clock stepped back an hour does not keep a stream open past its reports', async () => {
    const clock = FakeTimers.install({ toFake: ['Date'] });
    try {
      const stream = streamTo(replica.server.origin, 1_000, 3_000);
      for (let i = 0; i < 4; i++) {
        stream.send(line(`r-${i}`));
        await replica.lines(i + 1);
        clock.setSystemTime(Date.now() - 3_600_000);
      }
      expect(replica.streams.map((s) => s.lines)).to.deep.equal([['r-0', 'r-1', 'r-2'], ['r-3']]);
      stream.close();
    } finally {
      clock.uninstall();
    }
  });

  it('a replica that answers 204 before the stream ends: that stream is closed, not left open, and the next report goes on a new one', async () => {
    replica.answerAtEnd = false;
    replica.behave = (_req, res) => {
      res.writeHead(204).end();
      return 'read';
    };
    const stream = streamTo(replica.server.origin, 60_000, 600_000);
    for (let i = 0; i < 3; i++) {
      const dropped = logger.next('stats report dropped');
      stream.send(line(`r-${i}`));
      expect(String((await dropped)?.error)).to.equal('report stream answered HTTP 204 before its end');
      await replica.lines(i + 1);
      await socketsClosed();
    }
    expect(replica.streams.map((s) => s.lines)).to.deep.equal([['r-0'], ['r-1'], ['r-2']]);
    stream.close();
  });

  it('a replica that answers with something else and never ends it: the stream is closed after the first 2 KiB of it, logged with its start', async () => {
    replica.answerAtEnd = false;
    replica.behave = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.write(`<html>${'x'.repeat(4_096)}`);
      return 'read';
    };
    const stream = streamTo(replica.server.origin, 60_000, 600_000);
    const dropped = logger.next('stats report dropped');
    stream.send(line('r-0'));
    expect(String((await dropped)?.error)).to.match(/^report stream answered HTTP 200: <html>x{194}$/);
    await socketsClosed();
    stream.send(line('r-1'));
    await replica.lines(2);
    expect(replica.streams.map((s) => s.lines)).to.deep.equal([['r-0'], ['r-1']]);
    stream.close();
  });

  it('a replica that answers, sends a little and then nothing: the stream is closed an interval later, and logged', async () => {
    replica.answerAtEnd = false;
    replica.behave = (_req, res) => {
      res.writeHead(500);
      res.write('starting');
      return 'read';
    };
    const stream = streamTo(replica.server.origin, 50, 600_000);
    const dropped = logger.next('stats report dropped');
    stream.send(line('r-0'));
    expect(String((await dropped)?.error)).to.equal('report stream answered HTTP 500, and then nothing for 50 ms');
    await socketsClosed();
    stream.close();
  });

  it('TLS material Node cannot use (a key that is not the certificate\'s): the report is dropped and logged, nothing thrown out of send()', async () => {
    const [a, b] = await Promise.all([generateCerts(), generateCerts()]);
    const tls = { cert: a.client.cert, key: b.client.key, ca: a.ca };
    const mismatched = new HttpsAgent({ keepAlive: true, ...tls });
    try {
      const stream = new ReportStream({ url: new URL('https://127.0.0.1:9/v1/reports'), agent: mismatched, tls, interval: 60_000, logger });
      stream.send(line('r-0'));
      expect(drops()).to.have.length(1);
      expect(drops()[0]).to.match(/key values mismatch/);
      stream.close();
    } finally {
      mismatched.destroy();
    }
  });

  it('a replica slow to connect (a TLS handshake never answered): the report waits on it, and when the next is due that stream is cut and a new one opened', async () => {
    const held = new Set<Socket>();
    const silent = createNetServer((socket) => held.add(socket.on('close', () => held.delete(socket))));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const tlsAgent = new HttpsAgent({ keepAlive: true });
    try {
      const url = new URL(`https://127.0.0.1:${(silent.address() as AddressInfo).port}/v1/reports`);
      const stream = new ReportStream({ url, agent: tlsAgent, interval: 60_000, maxAge: 600_000, logger });
      stream.send(line('r-0'));
      while (held.size < 1) await once(silent, 'connection');
      const first = [...held][0]!;
      const firstClosed = new Promise((resolve) => first.once('close', resolve));
      stream.send(line('r-1'));
      expect(drops()).to.deep.equal(['the replica has not taken the previous report']);
      await firstClosed;
      while (held.size < 1) await once(silent, 'connection'); // the new stream's connection
      stream.close();
    } finally {
      tlsAgent.destroy();
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it('close() cuts the open stream: the replica sees it end without its end, and nothing is logged', async () => {
    const stream = streamTo(replica.server.origin, 60_000, 600_000);
    stream.send(line('r-0'));
    await replica.lines(1);
    const req = replica.server.requests[0]!;
    const closed = new Promise((resolve) => req.once('close', resolve));
    stream.close();
    await closed;
    expect([req.complete, replica.streams[0]!.ended]).to.deep.equal([false, false]);
    expect(drops()).to.deep.equal([]);
  });
});
