import FakeTimers from '@sinonjs/fake-timers';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { MeshEventMap, MeshEventName } from '../../lib/events.ts';
import { gotTransport } from '../../lib/got.ts';
import { createMesh } from '../../lib/mesh.ts';
import type { Mesh, MeshOptions } from '../../lib/mesh.ts';
import type { PolicyDocument, PolicySettings, ServiceDocument } from '../../lib/policy/types.ts';
import type { TransportFactory } from '../../lib/transport/types.ts';
import { undiciTransport } from '../../lib/transport/undici.ts';

/*
 * A scripted fault server on real loopback. Each request takes the next step of the script (or the
 * default step once the script has run out). Its delays are the upstream's behaviour, so they use the
 * real timers captured here, before any test installs fake ones.
 */
type FakeTimerConfig = NonNullable<Parameters<typeof FakeTimers.install>[0]>;
export type FakeClock = ReturnType<typeof FakeTimers.install>;

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export type FaultStep =
  /** Answer with this status; `retryAfter` becomes a Retry-After header (seconds, or an HTTP date). */
  | { status: number; body?: string | Uint8Array; headers?: Record<string, string>; retryAfter?: number | string }
  /** Wait `delay` ms (real time), then take `then`. */
  | { delay: number; then: FaultStep }
  /** Destroy the socket before answering. */
  | { reset: true }
  /** Never answer: the request is held until the client goes away or close() is called. */
  | { hang: true };

export interface SeenRequest {
  /** 1 for the first request the server saw. */
  readonly n: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The full body bytes (what arrived before the client went away, if it did). */
  readonly body: Buffer;
  /** True when the request body did not arrive in full (the client aborted mid-body). */
  readonly bodyAborted: boolean;
  readonly socket: Socket;
  /** The step this request took. */
  readonly step: FaultStep;
  /** The x-meshfetch-attempt header, as a number (undefined when absent). */
  readonly attempt: number | undefined;
  /** The x-meshfetch-deadline-ms header, as a number (undefined when absent). */
  readonly deadlineMs: number | undefined;
  /** Resolves when this request's socket has closed (at once if it already has). */
  socketClosed(): Promise<void>;
}

export interface FaultServer {
  /** e.g. "http://127.0.0.1:40123" */
  readonly origin: string;
  readonly server: Server;
  /** Every request seen so far (body read in full), in arrival order. */
  readonly requests: readonly SeenRequest[];
  /** Steps still to be taken; push more at any time. */
  readonly script: FaultStep[];
  /** The step taken once the script has run out. */
  defaultStep: FaultStep;
  /** Resolves with the nth request (1-based) once it has arrived with its whole body. */
  request(n: number): Promise<SeenRequest>;
  /** Destroys every socket (held requests included), cancels pending delays and stops listening. */
  close(): Promise<void>;
}

function numberHeader(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  return raw === undefined ? undefined : Number(raw);
}

function socketClosed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

async function readAll(req: IncomingMessage): Promise<{ body: Buffer; aborted: boolean }> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve({ body: Buffer.concat(chunks), aborted: false }));
    req.once('error', () => resolve({ body: Buffer.concat(chunks), aborted: true }));
    req.once('close', () => {
      if (!req.complete) resolve({ body: Buffer.concat(chunks), aborted: true });
    });
  });
}

/** Starts a fault server on 127.0.0.1 (random port) with `script`; `defaultStep` is 200 "ok" unless given. */
export async function startFaultServer(
  script: FaultStep[] = [],
  defaultStep: FaultStep = { status: 200, body: 'ok' },
): Promise<FaultServer> {
  const server = createServer();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const requests: SeenRequest[] = [];
  const waiters = new Map<number, (seen: SeenRequest) => void>();
  let arrived = 0;
  let closing = false;

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const apply = (step: FaultStep, req: IncomingMessage, res: ServerResponse): void => {
    if (closing || req.socket.destroyed) return;
    if ('hang' in step) return; // held: the socket is destroyed by the client or by close()
    if ('reset' in step) {
      req.socket.destroy();
      return;
    }
    if ('delay' in step) {
      const timer = realSetTimeout(() => {
        timers.delete(timer);
        apply(step.then, req, res);
      }, step.delay);
      timers.add(timer);
      return;
    }
    const body = step.body ?? '';
    const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body), ...step.headers };
    if (step.retryAfter !== undefined) headers['retry-after'] = String(step.retryAfter);
    res.writeHead(step.status, headers);
    res.end(body);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const n = ++arrived;
    const step = fault.script.length > 0 ? fault.script.shift()! : fault.defaultStep;
    void readAll(req).then(({ body, aborted }) => {
      const socket = req.socket;
      const seen: SeenRequest = {
        n,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        bodyAborted: aborted,
        socket,
        step,
        attempt: numberHeader(req.headers['x-meshfetch-attempt']),
        deadlineMs: numberHeader(req.headers['x-meshfetch-deadline-ms']),
        socketClosed: () => socketClosed(socket),
      };
      // Recorded in arrival order even when bodies finish out of order.
      requests.push(seen);
      requests.sort((a, b) => a.n - b.n);
      waiters.get(n)?.(seen);
      waiters.delete(n);
      apply(step, req, res);
    });
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const fault: FaultServer = {
    origin: `http://127.0.0.1:${port}`,
    server,
    requests,
    script: [...script],
    defaultStep,
    request(n) {
      const seen = requests.find((r) => r.n === n);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const previous = waiters.get(n);
        waiters.set(n, (value) => {
          previous?.(value);
          resolve(value);
        });
      });
    },
    async close() {
      closing = true;
      for (const timer of timers) realClearTimeout(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return;
      server.close();
      await once(server, 'close');
    },
  };
  return fault;
}

/** A loopback origin nobody listens on: a port that was bound and then released. */
export async function deadOrigin(): Promise<string> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return `http://127.0.0.1:${port}`;
}

/* ---------------------------------------------------------------------------------------------
 * A small harness for the resilience tests: meshes pointed at fault servers, with everything they
 * open closed after each test (servers first, so that held requests end, then the meshes).
 * ------------------------------------------------------------------------------------------- */

export const TRANSPORTS: readonly { readonly name: string; readonly create: () => TransportFactory }[] = [
  { name: 'undici', create: () => undiciTransport() },
  { name: 'got', create: () => gotTransport() },
];

export type RecordedEvents = { [K in MeshEventName]: MeshEventMap[K][] };

/** Records every mesh event in arrays; the listeners are removed by the harness. */
export function recordEvents(mesh: Mesh): RecordedEvents & { dispose(): void } {
  const recorded: RecordedEvents = {
    retry: [], giveUp: [], budgetExhausted: [], hedge: [], circuit: [], limited: [], ejection: [], certificate: [], policy: [], attempt: [], call: [], fault: [], mirror: [],
  };
  const disposers = (Object.keys(recorded) as MeshEventName[]).map((name) =>
    mesh.on(name, (event) => (recorded[name] as unknown[]).push(event)),
  );
  return Object.assign(recorded, { dispose: () => disposers.forEach((off) => off()) });
}

/** Resolves with the next event of that name. */
export function nextEvent<K extends MeshEventName>(mesh: Mesh, name: K): Promise<MeshEventMap[K]> {
  return new Promise((resolve) => {
    const off = mesh.on(name, (event) => {
      off();
      resolve(event);
    });
  });
}


/** A policy document with one service, "up", at `endpoints`. */
export function upPolicy(endpoints: string | string[], service: ServiceDocument = {}, defaults: PolicySettings = {}): PolicyDocument {
  return {
    apiVersion: 'meshfetch/v1',
    defaults,
    services: { up: { endpoints: Array.isArray(endpoints) ? endpoints : [endpoints], ...service } },
  };
}

export class Harness {
  readonly transport: () => TransportFactory;
  readonly #servers: FaultServer[] = [];
  readonly #closers: (() => Promise<void>)[] = [];
  readonly #meshes: Mesh[] = [];
  #clock: FakeClock | undefined;

  constructor(transport: () => TransportFactory = () => undiciTransport()) {
    this.transport = transport;
  }

  async server(script: FaultStep[] = [], defaultStep?: FaultStep): Promise<FaultServer> {
    const server = await startFaultServer(script, defaultStep);
    this.#servers.push(server);
    return server;
  }

  /** Anything else to close with the servers (another kind of server). */
  closeWithServers(close: () => Promise<void>): void {
    this.#closers.push(close);
  }

  /** A mesh with the harness's transport and no backoff jitter (random pinned to 0) unless given. */
  mesh(policy: PolicyDocument, options: Omit<MeshOptions, 'policy'> = {}): Mesh {
    const mesh = createMesh({ env: {}, transport: this.transport(), random: () => 0, ...options, policy });
    this.#meshes.push(mesh);
    return mesh;
  }

  /** Fakes `toFake` (e.g. Date) until close(); the servers keep real timers (captured above). */
  fakeClock(toFake: FakeTimerConfig['toFake']): FakeClock {
    this.#clock?.uninstall();
    this.#clock = FakeTimers.install({ toFake });
    return this.#clock;
  }

  async close(): Promise<void> {
    this.#clock?.uninstall();
    this.#clock = undefined;
    const servers = this.#servers.splice(0);
    const closers = this.#closers.splice(0);
    await Promise.all([...servers.map((s) => s.close()), ...closers.map((close) => close())]);
    await Promise.all(this.#meshes.splice(0).map((mesh) => mesh.close()));
  }
}
