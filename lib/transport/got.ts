import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import defaultGot from 'got';
import type { Agents, Delays, Got, Request as GotRequest, Response as GotResponse, StreamOptions } from 'got';
import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import { transportError } from './errors.ts';
import { openBody } from './request-body.ts';
import { DEFAULT_CONNECTIONS_PER_ORIGIN } from './types.ts';
import { destroyIdleSockets, MeshHttpsAgents, perRequestTls } from './got-tls.ts';
import type { GotTlsOptions } from './got-tls.ts';
import type { Transport, TransportFactory, TransportSettings } from './types.ts';

export interface GotTransportOptions {
  /**
   * The got instance to send with, with its hooks (default: got's default export). The transport
   * extends it with: no retries (the mesh's retry layer owns retries, with its budget), no redirects,
   * no throwing on 4xx/5xx, and keep-alive agents unless the instance already has its own.
   *
   * got's `decompress` default is kept: got sends `accept-encoding` and decodes gzip, deflate, br (and
   * zstd) bodies, removing content-encoding and content-length from the response headers, so the
   * body handed up is the decoded one. Set `decompress: false` on the instance to get raw bytes, as
   * the undici transport gives them.
   *
   * got's promise-only features (afterResponse hooks, responseType, resolveBodyOnly, pagination) do
   * not apply: the transport uses got's stream API so that bodies are streamed, never buffered. The
   * hooks that run (init, beforeRequest, beforeError) are listed in docs/architecture.md#got-hooks.
   */
  got?: Got;
  /**
   * Connections per origin at most on the agents the transport creates (their maxSockets; default
   * DEFAULT_CONNECTIONS_PER_ORIGIN, 128); further requests queue in the agent. `null` is unbounded.
   * Agents that came with the got instance keep their own settings.
   */
  connections?: number | null;
}

/** A policy duration as a got delay: 0 and non-finite mean "no timeout", as they do for undici. */
function delay(ms: number | undefined): number | undefined {
  return ms !== undefined && ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

/**
 * The body handed up: a thin Readable over the got stream, so that a failure mid-body surfaces the
 * way it does with undici, i.e. an abort as ctx.signal's reason and anything else mapped by
 * transportError (got would otherwise wrap the reason in its own AbortError). Destroying it
 * destroys the got stream, which destroys the socket when the body was not read to the end.
 */
function responseBody(source: GotRequest, mapError: (err: unknown) => unknown): Readable {
  const body = new Readable({
    read() {
      source.resume();
    },
    destroy(err, callback) {
      if (!source.readableEnded) source.destroy();
      callback(err);
    },
  });
  source.on('data', (chunk: Buffer) => {
    if (!body.push(chunk)) source.pause();
  });
  source.once('end', () => body.push(null));
  source.once('error', (err) => body.destroy(mapError(err) as Error));
  // got emits a parser error in the same tick as 'response' when the bad bytes came with the headers,
  // before the caller can listen: the error must not escape as an unhandled 'error' event. The body
  // keeps it (body.errored) and whoever reads the body gets it.
  body.on('error', keepForReader);
  return body;
}

/** Shared, so that the listener holds nothing of the call. */
function keepForReader(): void {}

/** got calls these methods bodiless and ends the request itself; for the others it waits for end(). */
const BODILESS = new Set(['GET', 'HEAD']);

/**
 * The got transport, for teams that bring their own got instance (and its hooks). One attempt is one
 * got stream: the promise resolves on got's 'response' event with the got stream itself as the body,
 * so bytes flow as the caller reads them and backpressure reaches the socket.
 *
 * How the mesh's timeouts map onto got's timeout phases (got has no single "connect" or "body idle"
 * timer, so each is mapped to the nearest phases):
 * - connect timeout (settings.connectTimeoutFor(origin)) → `lookup` (DNS), `connect` (TCP, after the
 *   lookup) and `secureConnect` (TLS handshake, after TCP). Each phase gets the whole budget, so a
 *   slow DNS answer plus a slow handshake can take up to three times it; undici counts them together.
 * - ctx.policy.perTryTimeout (headers timeout) → `response`: from the moment the request (body
 *   included) has been written until the response headers arrive.
 * - ctx.policy.bodyTimeout (idle time between body chunks) → `socket`: got's inactivity timeout on
 *   the socket. It is the only idle timer got has, and it runs for the whole exchange, so it also
 *   bounds silence while uploading and while waiting for headers (there the shorter of perTryTimeout
 *   and bodyTimeout wins). got's `read` phase is not used: it bounds the whole download, not idleness.
 * - got's `request` and `send` phases are not used: the whole call is bounded by ctx.signal (the deadline), which got turns into an abort that destroys the socket.
 * A timeout destroys the socket; errors are mapped by transportError (phases lookup/connect/
 * secureConnect → MESHFETCH_CONNECT, the others → MESHFETCH_TIMEOUT).
 */
class GotTransport implements Transport {
  readonly name = 'got';
  readonly #got: Got;
  readonly #settings: TransportSettings;
  readonly #ownedAgents: (HttpAgent | HttpsAgent)[] = [];
  readonly #inFlight = new Set<GotRequest>();
  #closed: Promise<void> | undefined;

  /** Agents for mesh https origins (undefined when the got instance brings its own https agent). */
  readonly #meshAgents: MeshHttpsAgents | undefined;
  readonly #stopRotating: (() => void) | undefined;

  constructor(settings: TransportSettings, options: GotTransportOptions) {
    this.#settings = settings;
    const base = options.got ?? defaultGot;
    // Keep-alive agents owned by the transport, for the schemes the instance has no agent for.
    const configured = base.defaults.options.agent;
    const connections = options.connections === undefined ? DEFAULT_CONNECTIONS_PER_ORIGIN : options.connections;
    const agentOptions = { keepAlive: true, maxSockets: connections ?? Infinity };
    const agent: Agents = {};
    if (configured.http === undefined) {
      agent.http = new HttpAgent(agentOptions);
      this.#ownedAgents.push(agent.http);
    }
    if (configured.https === undefined) {
      agent.https = new HttpsAgent(agentOptions);
      this.#ownedAgents.push(agent.https);
      this.#meshAgents = new MeshHttpsAgents(agentOptions.maxSockets);
    }
    this.#got = base.extend({
      agent,
      retry: { limit: 0 }, // got's own retry never fires: the mesh's retry layer decides, within its budget
      throwHttpErrors: false,
      followRedirect: false,
    });
    this.#stopRotating = settings.tls?.onRotate(() => this.#meshAgents?.retireAll());
  }

  async request(req: MeshRequest, ctx: CallContext): Promise<MeshResponse> {
    if (this.#closed) {
      throw new MeshError(ErrorCode.Closed, `the got transport is closed; cannot call ${ctx.service} at ${req.origin}`, {
        service: ctx.service,
        route: ctx.route,
      });
    }
    // An abort that already happened must not consume a one-shot body.
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    let stream: GotRequest;
    try {
      // A one-shot body opened twice throws MESHFETCH_BODY here, before anything is sent.
      const body = openBody(req.body) ?? undefined;
      stream = this.#got.stream(req.origin + req.path, {
        method: req.method as NonNullable<StreamOptions['method']>,
        headers: req.headers,
        body,
        allowGetBody: body !== undefined,
        signal: ctx.signal,
        ...this.#tls(req.origin),
        timeout: this.#timeouts(req.origin, ctx),
        context: { meshfetch: { service: ctx.service, route: ctx.route, attempt: ctx.attempt } },
      });
      if (body === undefined && !BODILESS.has(req.method.toUpperCase())) stream.end();
    } catch (err) {
      throw transportError(err, ctx, req.origin);
    }
    this.#track(stream);
    return await new Promise<MeshResponse>((resolve, reject) => {
      const onError = (err: unknown): void => {
        stream.off('response', onResponse);
        reject(transportError(err, ctx, req.origin));
      };
      const onResponse = (res: GotResponse): void => {
        stream.off('error', onError);
        // From here on, failures surface on the body stream, to whoever consumes it.
        resolve({ status: res.statusCode, statusText: res.statusMessage, headers: res.headers, body: responseBody(stream, (err) => transportError(err, ctx, req.origin)) });
      };
      stream.once('error', onError);
      stream.once('response', onResponse);
    });
  }

  /**
   * The origin's TLS, read on every request, so that rotated material is used by the next
   * connection: on the mesh agent for that origin, or (with the instance's own https agent, which is
   * left alone) as per-request https options.
   */
  #tls(origin: string): GotTlsOptions | undefined {
    const tls = this.#settings.tls?.forOrigin(origin);
    if (!tls) return undefined;
    return this.#meshAgents ? this.#meshAgents.optionsFor(origin, tls) : perRequestTls(tls);
  }

  #timeouts(origin: string, ctx: CallContext): Delays {
    const connect = delay(this.#settings.connectTimeoutFor?.(origin));
    return {
      lookup: connect,
      connect,
      secureConnect: connect,
      response: delay(ctx.policy.perTryTimeout),
      socket: delay(ctx.policy.bodyTimeout),
    };
  }

  /** A request is in flight until its body has been read to the end, or it failed or was destroyed. */
  #track(stream: GotRequest): void {
    this.#inFlight.add(stream);
    const done = (): void => {
      this.#inFlight.delete(stream);
      stream.off('end', done).off('close', done).off('error', done);
    };
    stream.once('end', done).once('close', done).once('error', done);
  }

  /**
   * Refuses new requests and destroys idle keep-alive sockets at once; requests in flight finish
   * (their bodies must still be consumed or destroyed, as with undici), then the owned agents are
   * destroyed. Agents that came with the user's got instance are left alone.
   */
  close(): Promise<void> {
    this.#stopRotating?.();
    this.#closed ??= (async () => {
      const agents = [...this.#ownedAgents, ...(this.#meshAgents?.agents() ?? [])];
      for (const agent of agents) destroyIdleSockets(agent);
      await Promise.all(
        [...this.#inFlight].map(
          (stream) =>
            new Promise<void>((resolve) => {
              stream.once('end', resolve).once('close', resolve).once('error', resolve);
            }),
        ),
      );
      for (const agent of agents) agent.destroy();
    })();
    return this.#closed;
  }
}

/** The got transport: `gotTransport({ got: myGot })` sends through the team's own got instance. */
export function gotTransport(options: GotTransportOptions = {}): TransportFactory {
  return (settings) => new GotTransport(settings, options);
}
