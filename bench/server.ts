/**
 * The upstream for every benchmark run.
 *
 * It always runs in a CHILD PROCESS (this same file, forked with IPC), so the
 * server's CPU never shows up in the client's `process.cpuUsage()`. On 2 cores
 * this gives one core to the client under test and one to the upstream.
 *
 * Behaviour of the child:
 *   - node:http on 127.0.0.1, random port, keep-alive (long idle timeout so
 *     connections survive while other candidates take their turn).
 *   - any path            -> 200, a fixed 64-byte JSON body
 *   - path prefix /fail   -> 503, a small JSON body (for retry-amplification runs)
 *   - IPC mode 'fail'     -> every path answers 503 until mode 'ok' again
 *   - counts requests served (total, 200s, 503s); the parent queries them over IPC
 *   - exits when the parent disconnects (parent died or closed the channel) or asks.
 *
 * Parent side: `startUpstream()` forks it and returns an `Upstream` handle.
 */
import { fork, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The fixed success body: exactly 64 bytes of JSON. */
export const OK_BODY: string = buildOkBody();
/** The 503 body for /fail and fail mode. */
export const FAIL_BODY = '{"error":"unavailable","code":503}';
/** Requests whose path starts with this get a 503. */
export const FAIL_PREFIX = '/fail';

export interface UpstreamCounts {
  /** every request the server answered */
  total: number;
  /** answered 200 */
  ok: number;
  /** answered 503 */
  failed: number;
  /** the upstream process's own CPU time (user+system µs) since start or the last reset */
  cpuUs: number;
}

export type UpstreamMode = 'ok' | 'fail';

export interface Upstream {
  /** e.g. "http://127.0.0.1:41234" */
  readonly origin: string;
  readonly port: number;
  /** requests served since start or the last reset */
  counts(): Promise<UpstreamCounts>;
  /** zero the counters (e.g. before a retry-amplification run) */
  reset(): Promise<void>;
  /** 'fail' answers 503 on every path; 'ok' restores normal behaviour (/fail still 503s) */
  setMode(mode: UpstreamMode): Promise<void>;
  /** stop the child and wait for it to exit */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- IPC protocol

type ToChild =
  | { type: 'counts'; id: number }
  | { type: 'reset'; id: number }
  | { type: 'mode'; id: number; mode: UpstreamMode }
  | { type: 'close' };

type FromChild =
  | { type: 'listening'; port: number }
  | { type: 'counts'; id: number; counts: UpstreamCounts }
  | { type: 'ack'; id: number };

// ---------------------------------------------------------------- parent side

/** Fork the upstream child and wait until it listens. */
export interface UpstreamOptions {
  /**
   * Linux only: pin the upstream to this CPU with taskset (pin the client to the
   * others yourself, e.g. `taskset -c 0 node bench/run.ts --pin-upstream 1`).
   */
  pinCpu?: number;
}

export function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const script = fileURLToPath(import.meta.url);
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'];
  const child = options.pinCpu !== undefined
    ? // taskset execs node with the IPC fd and NODE_CHANNEL_FD inherited, like fork() does
      spawn('taskset', ['-c', String(options.pinCpu), process.execPath, script, '--child'], { stdio, serialization: 'json' })
    : fork(script, ['--child'], {
        // no inspector/--expose-gc etc. from the parent; the child needs none
        execArgv: [],
        stdio,
        serialization: 'json',
      });

  return new Promise<Upstream>((resolve, reject) => {
    const onEarlyExit = (code: number | null, signal: string | null) =>
      reject(new Error(`bench upstream exited before listening (code ${code}, signal ${signal})`));
    child.once('error', reject);
    child.once('exit', onEarlyExit);
    child.once('message', (msg: FromChild) => {
      if (msg.type !== 'listening') {
        reject(new Error(`bench upstream: unexpected first message ${JSON.stringify(msg)}`));
        return;
      }
      child.off('exit', onEarlyExit);
      child.off('error', reject);
      resolve(makeHandle(child, msg.port));
    });
  });
}

function makeHandle(child: ChildProcess, port: number): Upstream {
  let nextId = 1;
  const pending = new Map<number, (msg: FromChild) => void>();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  child.on('message', (msg: FromChild) => {
    if (msg.type === 'listening') return;
    const done = pending.get(msg.id);
    if (done) {
      pending.delete(msg.id);
      done(msg);
    }
  });
  void exited.then(() => {
    for (const done of pending.values()) done({ type: 'ack', id: -1 });
    pending.clear();
  });

  const ask = (msg: ToChild & { id: number }): Promise<FromChild> =>
    new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error('bench upstream is not running'));
        return;
      }
      pending.set(msg.id, resolve);
      child.send(msg);
    });

  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    async counts() {
      const reply = await ask({ type: 'counts', id: nextId++ });
      if (reply.type !== 'counts') throw new Error('bench upstream exited');
      return reply.counts;
    },
    async reset() {
      await ask({ type: 'reset', id: nextId++ });
    },
    async setMode(mode) {
      await ask({ type: 'mode', id: nextId++, mode });
    },
    async close() {
      if (child.connected) {
        child.send({ type: 'close' } satisfies ToChild);
        child.disconnect();
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------- child side

function buildOkBody(): string {
  const base = { id: 1, name: 'meshfetch-bench', ok: true, pad: '' };
  const size = Buffer.byteLength(JSON.stringify(base));
  base.pad = 'x'.repeat(64 - size);
  const body = JSON.stringify(base);
  if (Buffer.byteLength(body) !== 64) throw new Error('bench body must be 64 bytes');
  return body;
}

function runChild(): void {
  const send = (msg: FromChild) => {
    if (process.connected) process.send!(msg);
  };
  const okBody = Buffer.from(OK_BODY);
  const failBody = Buffer.from(FAIL_BODY);
  const okHeaders = ['content-type', 'application/json', 'content-length', String(okBody.length)];
  const failHeaders = ['content-type', 'application/json', 'content-length', String(failBody.length)];
  const counts = { total: 0, ok: 0, failed: 0 };
  let cpuBase = process.cpuUsage();
  const snapshot = (): UpstreamCounts => {
    const cpu = process.cpuUsage(cpuBase);
    return { ...counts, cpuUs: cpu.user + cpu.system };
  };
  let mode: UpstreamMode = 'ok';

  const server = createServer(
    { keepAlive: true, noDelay: true },
    (req: IncomingMessage, res: ServerResponse) => {
      counts.total++;
      // drain any request body, then answer
      const fail = mode === 'fail' || req.url!.startsWith(FAIL_PREFIX);
      if (fail) {
        counts.failed++;
        res.writeHead(503, failHeaders);
        res.end(failBody);
      } else {
        counts.ok++;
        res.writeHead(200, okHeaders);
        res.end(okBody);
      }
      req.resume();
    },
  );
  // Keep idle connections for a long time: while one candidate runs, the
  // others' pools sit idle; a reconnect mid-measurement would skew numbers.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;

  const shutdown = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  };

  process.on('message', (msg: ToChild) => {
    switch (msg.type) {
      case 'counts':
        send({ type: 'counts', id: msg.id, counts: snapshot() });
        break;
      case 'reset':
        counts.total = counts.ok = counts.failed = 0;
        cpuBase = process.cpuUsage();
        send({ type: 'ack', id: msg.id });
        break;
      case 'mode':
        mode = msg.mode;
        send({ type: 'ack', id: msg.id });
        break;
      case 'close':
        shutdown();
        break;
    }
  });
  // Parent exited, crashed or closed the channel: do not outlive it.
  process.on('disconnect', shutdown);

  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    send({ type: 'listening', port });
  });
}

if (import.meta.main && process.argv[2] === '--child' && typeof process.send === 'function') {
  runChild();
}
