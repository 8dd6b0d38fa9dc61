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

/** Client TLS material shared by every HTTPS connection a transport opens. */
export interface TlsMaterial {
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
}

export interface TransportSettings {
  tls?: TlsMaterial | undefined;
  /** Connect timeout for the origin, read when a connection pool for it is created. */
  connectTimeoutFor?: ((origin: string) => number) | undefined;
}

/** A transport constructor the mesh calls once, with the TLS material and policy lookups it needs. */
export type TransportFactory = (settings: TransportSettings) => Transport;
