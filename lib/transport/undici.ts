import './platform-fetch-first.ts';
import { Agent, Pool, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import type { CallContext, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import { transportError } from './errors.ts';
import { openBody } from './request-body.ts';
import { UndiciAttempt } from './undici-attempt.ts';
import { DEFAULT_CONNECTIONS_PER_ORIGIN } from './types.ts';
import type { OriginTls, Transport, TransportFactory, TransportSettings } from './types.ts';

export interface UndiciTransportOptions {
  /**
   * Connections per origin at most (default DEFAULT_CONNECTIONS_PER_ORIGIN, 128); further requests
   * queue for a free one. `null` is unbounded, as undici's own Pool.
   */
  connections?: number | null;
  /** How long an idle keep-alive socket is kept (default 4s, as undici). */
  keepAliveTimeout?: number;
}

/**
 * A connector that reads the origin's TLS at each new connection, so that rotated material and a
 * changed identity apply to the next connection. undici's connector (and its TLS session cache) is
 * rebuilt only when the TLS object changes: a session resumed under the old material would skip
 * presenting the new certificate.
 */
function connectorFor(origin: string, settings: TransportSettings): buildConnector.connector {
  const timeout = settings.connectTimeoutFor?.(origin);
  let built: { tls: OriginTls | undefined; connect: buildConnector.connector } | undefined;
  return (options, callback) => {
    const tls = settings.tls?.forOrigin(origin);
    if (built === undefined || built.tls !== tls) built = { tls, connect: buildConnector({ ...tls, timeout }) };
    return built.connect(options, callback);
  };
}

/**
 * The default transport: one undici Agent that lazily creates a keep-alive Pool per origin and drops
 * it once its connections are gone. It never touches undici's global dispatcher. When the TLS
 * material rotates, a new Agent takes the next requests and the old one closes gracefully: requests
 * in flight (and queued on it) finish on their connections, which then close.
 */
class UndiciTransport implements Transport {
  readonly name = 'undici';
  readonly #settings: TransportSettings;
  readonly #options: UndiciTransportOptions;
  readonly #draining = new Set<Promise<void>>();
  readonly #stopRotating: (() => void) | undefined;
  #agent: Agent;

  constructor(settings: TransportSettings, options: UndiciTransportOptions) {
    this.#settings = settings;
    this.#options = options;
    this.#agent = this.#createAgent();
    this.#stopRotating = settings.tls?.onRotate(() => this.#rotate());
  }

  #createAgent(): Agent {
    return new Agent({
      factory: (origin, opts) =>
        new Pool(origin, {
          ...(opts as Pool.Options),
          connections: this.#options.connections === undefined ? DEFAULT_CONNECTIONS_PER_ORIGIN : this.#options.connections,
          keepAliveTimeout: this.#options.keepAliveTimeout ?? 4_000,
          connect: connectorFor(String(origin), this.#settings),
        }),
    });
  }

  #rotate(): void {
    if (this.#closed) return;
    const old = this.#agent;
    this.#agent = this.#createAgent();
    // close() waits for the old Agent's requests; it cannot fail but for being closed twice.
    const drained = old.close().catch(() => {}).finally(() => this.#draining.delete(drained));
    this.#draining.add(drained);
  }

  async request(req: MeshRequest, ctx: CallContext): Promise<MeshResponse> {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    try {
      return await new Promise<MeshResponse>((resolve, reject) => {
        const options: Dispatcher.DispatchOptions = {
          origin: req.origin,
          path: req.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: req.headers,
          body: openBody(req.body),
          bodyTimeout: ctx.policy.bodyTimeout,
        };
        this.#agent.dispatch(options, new UndiciAttempt(ctx, req.origin, resolve, reject));
      });
    } catch (err) {
      throw transportError(err, ctx, req.origin);
    }
  }

  #closed: Promise<void> | undefined;

  /** Idempotent: undici's Agent rejects a second close() with ClientDestroyedError. */
  close(): Promise<void> {
    this.#stopRotating?.();
    this.#closed ??= Promise.all([this.#agent.close(), ...this.#draining]).then(() => undefined);
    return this.#closed;
  }
}

/** The undici transport (the default). */
export function undiciTransport(options: UndiciTransportOptions = {}): TransportFactory {
  return (settings) => new UndiciTransport(settings, options);
}
