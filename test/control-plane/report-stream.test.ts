import { expect } from 'chai';
import { once } from 'node:events';
import { request } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import FakeTimers from '@sinonjs/fake-timers';
import { BODY_DEADLINE_MS } from '../../lib/control-plane/body.ts';
import { MAX_REPORT_BYTES, REPORT_STREAM_IDLE_MS, REPORT_STREAM_TYPE, REPORT_VERSION, edgeReport } from '../../lib/telemetry/report.ts';
import { startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';

/** A report line from `instance`: `requests` calls to payments, all successes. */
function reportLine(instance: string, requests: number): string {
  const edge = edgeReport({ to: 'payments', route: 'charge', requests, successes: requests, failures: 0, cancelled: 0, attempts: requests, attemptSuccesses: requests, attemptFailures: 0, retries: 0, hedges: 0, breaker: 'closed', latency: null, windowMs: 60_000 });
  return `${JSON.stringify({ v: REPORT_VERSION, service: 'checkout', instance, edges: [edge] })}\n`;
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  error: { message: string; reason: string } | undefined;
}

/** A POST /v1/reports stream on a connection of its own; `answer` resolves when the control plane answers. */
function openStream(url: string, type = REPORT_STREAM_TYPE): { req: ClientRequest; answer: Promise<Answer> } {
  const req = request(`${url}/v1/reports`, { method: 'POST', agent: false, headers: { 'content-type': type } });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, error: text ? (JSON.parse(text) as { error: Answer['error'] }).error : undefined }));
    });
  });
  req.flushHeaders();
  return { req, answer };
}

describe('POST /v1/reports as a stream (application/x-ndjson, a report a line)', () => {
  let control: TestControlPlane;
  /** Instances the control plane has logged a report from, in order. */
  let taken: string[];
  const onLine = (line: { message: string; fields?: { instance?: string } }): void => {
    if (line.message === 'stats report') taken.push(line.fields!.instance!);
  };
  const nextTaken = async (): Promise<string> => {
    const before = taken.length;
    while (taken.length === before) await once(control.logger, 'line');
    return taken.at(-1)!;
  };
  const heldInstances = async (): Promise<string[]> => {
    const stats = (await (await fetch(`${control.url}/v1/stats`)).json()) as { edges: { instances: number }[] };
    return stats.edges.map((e) => String(e.instances));
  };

  beforeEach(async () => {
    taken = [];
    control = await startTestControlPlane({ apiVersion: 'meshfetch/v1', services: {} }, { logLevel: 'debug', maxReportStreams: 2 });
    control.logger.on('line', onLine);
  });
  afterEach(async () => {
    control.logger.off('line', onLine);
    await control.close();
  });

  it('takes each report in as its line ends, while the stream stays open, and answers 204 once at its end', async () => {
    const { req, answer } = openStream(control.url);
    for (const instance of ['i-1', 'i-2', 'i-3']) {
      const arrived = nextTaken();
      req.write(reportLine(instance, 5));
      expect(await arrived).to.equal(instance);
    }
    expect(await heldInstances()).to.deep.equal(['3']);
    req.end();
    expect((await answer).status).to.equal(204);
  });

  it('puts lines together across writes, and takes two that arrive in one write', async () => {
    const { req, answer } = openStream(control.url);
    const line = reportLine('i-1', 5);
    req.write(line.slice(0, 10));
    req.write(line.slice(10, 200));
    const arrived = nextTaken();
    req.write(`${line.slice(200)}${reportLine('i-2', 1)}${reportLine('i-3', 1).trimEnd()}`);
    expect(await arrived).to.equal('i-1');
    req.end(); // the last line has no "\n": the end of the body ends it
    expect((await answer).status).to.equal(204);
    expect(taken).to.deep.equal(['i-1', 'i-2', 'i-3']);
  });

  it('refuses a bad report at once, naming it and the problem; the reports before it stay, nothing after it is read', async () => {
    const { req, answer } = openStream(control.url);
    req.write(reportLine('i-1', 5));
    await nextTaken();
    req.write(reportLine('i-2', 5).replace('"checkout"', '"bad name!"'));
    const got = await answer;
    expect(got.status).to.equal(400);
    expect(got.error?.message).to.equal('report 2 on this stream: service: expected a service name');
    expect(got.headers.connection).to.equal('close');
    await once(req.socket!, 'close');
    expect(taken).to.deep.equal(['i-1']);
    expect(await heldInstances()).to.deep.equal(['1']);
  });

  it('a stream its mesh cuts mid-report keeps the reports it finished, drops the cut one, and is not counted as refused', async () => {
    const { req, answer } = openStream(control.url);
    answer.catch(() => undefined); // no answer comes: the mesh went away
    req.write(reportLine('i-1', 5));
    await nextTaken();
    req.write(reportLine('i-2', 5).slice(0, 100));
    const refusedBefore = control.logger.lines.filter((l) => l.message === 'request refused').length;
    req.destroy();
    // Once two new streams are open (the cap is 2), the control plane is done with the cut one.
    const opened: ReturnType<typeof openStream>[] = [];
    for (let attempt = 0; opened.length < 2; attempt++) {
      if (attempt > 50) throw new Error('the cut stream still holds its slot');
      const next = openStream(control.url);
      const arrived = nextTaken();
      next.req.write(reportLine(`n-${opened.length}`, 1));
      const first = await Promise.race([arrived.then(() => 'taken'), next.answer.then((a) => a.status)]);
      if (first === 'taken') opened.push(next);
    }
    for (const { req: open, answer: done } of opened) {
      open.end();
      expect((await done).status).to.equal(204);
    }
    const metrics = await (await fetch(`${control.url}/metrics`)).text();
    expect(metrics).to.not.match(/meshfetch_control_plane_rejects_total\{reason="malformed"\}/);
    expect(control.logger.lines.filter((l) => l.message === 'request refused')).to.have.length(refusedBefore);
    expect(taken).to.deep.equal(['i-1', 'n-0', 'n-1']);
  });

  it('refuses a line that is not JSON, naming it', async () => {
    const { req, answer } = openStream(control.url);
    req.write('{"v": 2,\n');
    const got = await answer;
    expect([got.status, got.error?.message]).to.deep.equal([400, 'report 1 on this stream: (document): not valid JSON']);
  });

  it('refuses a line past the size limit (413) as soon as it passes it, without reading on', async () => {
    const { req, answer } = openStream(control.url);
    req.write(reportLine('i-1', 5));
    const chunk = 'x'.repeat(64 * 1_024);
    // Bounded: the limit is 8 chunks; the control plane answers before the 10th has gone.
    for (let i = 0; i < 10 && req.writable; i++) req.write(chunk);
    const got = await answer;
    expect([got.status, got.error?.message]).to.deep.equal([413, `report 2 on this stream: larger than ${MAX_REPORT_BYTES} bytes`]);
    expect(taken).to.deep.equal(['i-1']);
  });

  it(`holds at most maxReportStreams streams open; past it 503 with Retry-After, and a slot frees when one ends`, async () => {
    const first = openStream(control.url);
    const second = openStream(control.url);
    for (const { req } of [first, second]) {
      const arrived = nextTaken();
      req.write(reportLine('i-1', 1));
      await arrived;
    }
    const third = openStream(control.url);
    third.req.write(reportLine('i-3', 1));
    const refused = await third.answer;
    expect([refused.status, refused.headers['retry-after'], refused.error?.reason]).to.deep.equal([503, '10', 'too-many-report-streams']);
    first.req.end();
    expect((await first.answer).status).to.equal(204);
    const fourth = openStream(control.url);
    fourth.req.end(reportLine('i-4', 1));
    expect((await fourth.answer).status).to.equal(204);
    second.req.end();
    expect((await second.answer).status).to.equal(204);
    expect(taken).to.deep.equal(['i-1', 'i-1', 'i-4']);
  });

  it('frees a refused stream\'s slot: one refused for a bad report, one for a line past the limit', async () => {
    const refused = [openStream(control.url), openStream(control.url)];
    for (const { req } of refused) {
      const arrived = nextTaken();
      req.write(reportLine('i-1', 1));
      await arrived;
    }
    refused[0]!.req.write('not json\n');
    refused[1]!.req.write(`${'x'.repeat(MAX_REPORT_BYTES + 1)}\n`);
    expect(await Promise.all(refused.map(async ({ answer }) => (await answer).status))).to.deep.equal([400, 413]);
    const streams = [openStream(control.url), openStream(control.url)];
    for (const [i, { req }] of streams.entries()) req.end(reportLine(`i-${i + 2}`, 1));
    expect(await Promise.all(streams.map(async ({ answer }) => (await answer).status))).to.deep.equal([204, 204]);
    expect(taken).to.deep.equal(['i-1', 'i-1', 'i-2', 'i-3']);
  });

  it('keeps the connection of requests answered with their bodies read: a report and a read pipelined, then another read', async () => {
    const { port } = new URL(control.url);
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    /** Waits until `count` answers to GET /healthz have come. */
    const healthAnswers = async (count: number): Promise<void> => {
      for (let reads = 0; (text.match(/"status":"ok"/g) ?? []).length < count; reads++) {
        if (reads > 100 || socket.destroyed) throw new Error(`not answered: ${text}`);
        await once(socket, 'data');
      }
    };
    const body = reportLine('i-1', 1);
    const health = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n';
    socket.write(`POST /v1/reports HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}${health}`);
    await healthAnswers(1);
    socket.write(health);
    await healthAnswers(2);
    expect(text.match(/HTTP\/1\.1 \d+/g)).to.deep.equal(['HTTP/1.1 204', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    socket.destroy();
  });

  it('still takes one report as a JSON body (application/json)', async () => {
    const res = await fetch(`${control.url}/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: reportLine('i-9', 2) });
    expect(res.status).to.equal(204);
    expect(taken).to.deep.equal(['i-9']);
  });

  describe('time limits (fake timers)', () => {
    let clock: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
    });
    afterEach(() => clock.uninstall());
    /** Waits (a bounded number of event-loop turns) until the control plane has set a timer: it is reading the body. */
    const timerSet = async (): Promise<void> => {
      for (let turn = 0; clock.countTimers() === 0; turn++) {
        if (turn > 10_000) throw new Error('the control plane set no timer');
        await new Promise((resolve) => setImmediate(resolve));
      }
    };

    it(`cuts a stream that completes no report for ${REPORT_STREAM_IDLE_MS / 1_000} s (408); each report restarts the count`, async () => {
      const { req, answer } = openStream(control.url);
      let got: Answer | undefined;
      void answer.then((a) => (got = a));
      await timerSet();
      for (let i = 0; i < 3; i++) {
        clock.tick(REPORT_STREAM_IDLE_MS - 1_000);
        const arrived = nextTaken();
        req.write(reportLine(`i-${i}`, 1));
        await arrived;
      }
      expect(got).to.equal(undefined);
      clock.tick(REPORT_STREAM_IDLE_MS);
      const cut = await answer;
      expect([cut.status, cut.error?.reason, cut.error?.message]).to.deep.equal([408, 'idle', `report stream: no report for ${REPORT_STREAM_IDLE_MS / 1_000} s`]);
      expect(taken).to.deep.equal(['i-0', 'i-1', 'i-2']);
    });

    it('leaves no timer behind once a stream ends, is refused or is cut', async () => {
      const ended = openStream(control.url);
      ended.req.end(reportLine('i-1', 1));
      expect((await ended.answer).status).to.equal(204);
      expect(clock.countTimers()).to.equal(0);
      const refused = openStream(control.url);
      refused.req.write('not json\n');
      expect((await refused.answer).status).to.equal(400);
      expect(clock.countTimers()).to.equal(0);
      const cut = openStream(control.url);
      cut.answer.catch(() => undefined);
      cut.req.write(reportLine('i-2', 1));
      await nextTaken();
      expect(clock.countTimers()).to.equal(1);
      cut.req.destroy();
      // Bounded: the control plane sees the cut within a few turns of the event loop; a timer left behind fails here.
      for (let turn = 0; clock.countTimers() > 0 && turn < 1_000; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(clock.countTimers()).to.equal(0);
    });

    it(`refuses a document body not complete within ${BODY_DEADLINE_MS / 1_000} s (408): the server has no whole-request timeout any more`, async () => {
      const { req, answer } = openStream(control.url, 'application/json');
      req.write('{"v": 2, ');
      await timerSet();
      clock.tick(BODY_DEADLINE_MS);
      const got = await answer;
      expect([got.status, got.error?.reason]).to.deep.equal([408, 'timeout']);
      expect(taken).to.deep.equal([]);
    });
  });

  it('closes the connection of a request answered before its body was read (a body on a GET, sent slowly)', async () => {
    const { port } = new URL(control.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"a":');
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await once(socket, 'close');
    expect(text).to.match(/^HTTP\/1\.1 200 /);
  });
});
