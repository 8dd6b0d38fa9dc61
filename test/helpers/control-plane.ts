import { EventEmitter, once } from 'node:events';
import { get as httpGet } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, startControlPlane } from '../../lib/index.ts';
import type { ControlPlane, ControlPlaneOptions, DocumentValidator, Mesh, MeshEventMap } from '../../lib/index.ts';
import { startServer } from './server.ts';
import type { TestServer } from './server.ts';
import type { LogFields, Logger } from '../../lib/log.ts';
import { SseParser } from '../../lib/control-plane-client/sse.ts';
import type { ServerSentEvent } from '../../lib/control-plane-client/sse.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** A logger that keeps every line and emits it, so a test can wait for a message. */
export class RecordingLogger extends EventEmitter implements Logger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[] = [];
  debug = (message: string, fields?: LogFields): void => this.#record('debug', message, fields);
  info = (message: string, fields?: LogFields): void => this.#record('info', message, fields);
  warn = (message: string, fields?: LogFields): void => this.#record('warn', message, fields);
  error = (message: string, fields?: LogFields): void => this.#record('error', message, fields);

  /** Resolves with the fields of the next line whose message contains `text`. */
  async next(text: string): Promise<LogFields | undefined> {
    for (;;) {
      const [line] = (await once(this, 'line')) as [{ message: string; fields: LogFields | undefined }];
      if (line.message.includes(text)) return line.fields;
    }
  }

  #record(level: string, message: string, fields: LogFields | undefined): void {
    const line = { level, message, fields };
    this.lines.push(line);
    this.emit('line', line);
  }
}

/** A policy document naming `payments` at `endpoint`, with `extra` merged into the service. */
export function paymentsPolicy(endpoint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [endpoint], ...extra } } };
}

export interface TestControlPlane {
  readonly cp: ControlPlane;
  readonly url: string;
  readonly dir: string;
  readonly policyFile: string;
  readonly logger: RecordingLogger;
  /** PUT a document (JSON) with the admin token; resolves with the status and parsed body. */
  publish(document: unknown, headers?: Record<string, string>): Promise<{ status: number; body: { revision?: string; error?: { message: string; problems?: string[] } } }>;
  close(): Promise<void>;
}

/** A real control plane on 127.0.0.1:0 over a policy file in a fresh temporary directory. */
export async function startTestControlPlane(initial: unknown, options: Partial<ControlPlaneOptions> = {}): Promise<TestControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-cp-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(initial, null, 2));
  const logger = new RecordingLogger();
  const cp = await startControlPlane({ policyFile, adminToken: ADMIN_TOKEN, logger, env: {}, ...options });
  return {
    cp,
    url: cp.url,
    dir,
    policyFile,
    logger,
    async publish(document, headers = {}) {
      const res = await fetch(`${cp.url}/v1/policy`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(document),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    async close() {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the mesh's next `policy` event that satisfies `accept`. */
export function nextPolicyEvent(mesh: Mesh, accept: (event: MeshEventMap['policy']) => boolean = () => true): Promise<MeshEventMap['policy']> {
  return new Promise((resolve) => {
    const off = mesh.on('policy', (event) => {
      if (!accept(event)) return;
      off();
      resolve(event);
    });
  });
}

/** Resolves once the mesh has `revision` in force (at once if it already has). */
export async function revisionInForce(mesh: Mesh, revision: string): Promise<void> {
  if (mesh.policyRevision === revision) return;
  await nextPolicyEvent(mesh, (event) => event.applied && event.revision === revision);
}

/** A raw watch stream read by a test: each server-sent event and each heartbeat comment, in order. */
export interface TestStream {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Resolves with the next `policy` event. */
  nextEvent(): Promise<ServerSentEvent>;
  /** Resolves when the next heartbeat comment arrives. */
  nextHeartbeat(): Promise<void>;
  close(): void;
}

export async function openStream(url: string, headers: Record<string, string> = {}): Promise<TestStream> {
  const emitter = new EventEmitter();
  const queue: ServerSentEvent[] = [];
  const req = httpGet(`${url}/v1/policy/watch`, { headers: { accept: 'text/event-stream', ...headers } });
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const parser = new SseParser((event) => {
    queue.push(event);
    emitter.emit('event');
  });
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    if (chunk.includes(':\n\n')) emitter.emit('heartbeat');
    parser.feed(chunk);
  });
  res.on('error', () => {});
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    async nextEvent() {
      while (queue.length === 0) await once(emitter, 'event');
      return queue.shift()!;
    },
    async nextHeartbeat() {
      await once(emitter, 'heartbeat');
    },
    close() {
      req.destroy();
    },
  };
}

/** A backend that answers every request with `{"name": name}`. */
export function namedBackend(name: string): Promise<TestServer> {
  return startServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name })));
}

/**
 * The validator of a control plane one version ahead of this client: it knows
 * `services.payments.futureKnob`, which this client's compilePolicy refuses.
 */
export const newerSchemaValidator: DocumentValidator = (document, source) => {
  const known = structuredClone(document) as { services?: { payments?: Record<string, unknown> } };
  delete known.services?.payments?.futureKnob;
  compilePolicy(known, source);
};
