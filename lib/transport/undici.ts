import './platform-fetch-first.ts';
import { Agent, Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { CallContext, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import { transportError } from './errors.ts';
import { openBody } from './request-body.ts';
import { UndiciAttempt } from './undici-attempt.ts';
import { DEFAULT_CONNECTIONS_PER_ORIGIN } from './types.ts';
import type { Transport, TransportFactory, TransportSettings } from './types.ts';

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
 * The default transport: one undici Agent that lazily creates a keep-alive Pool per origin and drops
 * it once its connections are gone. It never touches undici's global dispatcher.
 */
class UndiciTransport implements Transport {
  readonly name = 'undici';
  readonly #agent: Agent;

  constructor(settings: TransportSettings, options: UndiciTransportOptions) {
    const tls = settings.tls ?? {};
    this.#agent = new Agent({
      factory: (origin, opts) =>
        new Pool(origin, {
          ...(opts as Pool.Options),
          connections: options.connections === undefined ? DEFAULT_CONNECTIONS_PER_ORIGIN : options.connections,
          keepAliveTimeout: options.keepAliveTimeout ?? 4_000,
          connect: { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: settings.connectTimeoutFor?.(String(origin)) },
        }),
    });
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
    this.#closed ??= this.#agent.close();
    return this.#closed;
  }
}

/** The undici transport (the default). */
export function undiciTransport(options: UndiciTransportOptions = {}): TransportFactory {
  return (settings) => new UndiciTransport(settings, options);
}
