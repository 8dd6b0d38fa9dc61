import type { ConnectionOptions } from 'node:tls';
import type { CallContext, MeshRequest, MeshResponse } from '../pipeline/types.ts';

/**
 * The last handler of the pipeline: sends one attempt over the network. Implementations map their
 * own failures to MeshError codes (connect, reset, tls, timeout) and reject with the signal's reason
 * when ctx.signal aborts.
 */
export interface Transport {
  readonly name: string;
  request(req: MeshRequest, ctx: CallContext): Promise<MeshResponse>;
  /** Closes idle connections and refuses new requests. */
  close(): Promise<void>;
}

/**
 * Connections a transport opens to one origin (an endpoint) at most, by default; requests beyond them
 * wait for a free connection, bounded by their call's deadline. Enough for thousands of calls per
 * second per endpoint at loopback-to-LAN latencies; bounded, so that a burst of calls cannot open
 * more sockets than the upstream's accept queue holds (Linux's default listen backlog is 511) and
 * fail on connect timeouts instead of waiting.
 */
export const DEFAULT_CONNECTIONS_PER_ORIGIN = 128;

/**
 * How the connections to one origin are secured, in node:tls terms: the mesh CA bundle, this
 * service's certificate and key (also as one ready secureContext) and the identity check.
 */
export type OriginTls = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'secureContext' | 'checkServerIdentity'>;

/**
 * Client TLS, which can change while the transport runs (certificate rotation, a new policy). A
 * transport asks forOrigin() when it opens a connection; the answer is the same object for as long
 * as nothing changed, so that what a transport builds from it can be cached by identity.
 */
export interface TransportTls {
  /** undefined: the platform defaults (system roots, hostname check, no client certificate). */
  forOrigin(origin: string): OriginTls | undefined;
  /**
   * `listener` runs after the material rotated: the transport drains pooled connections to new ones
   * (calls in flight finish on the old ones). Returns the unsubscriber.
   */
  onRotate(listener: () => void): () => void;
}

export interface TransportSettings {
  tls?: TransportTls | undefined;
  /** Connect timeout for the origin, read when a connection pool for it is created. */
  connectTimeoutFor?: ((origin: string) => number) | undefined;
}

/** A transport constructor the mesh calls once, with the TLS material and policy lookups it needs. */
export type TransportFactory = (settings: TransportSettings) => Transport;
