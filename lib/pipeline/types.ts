import type { Readable } from 'node:stream';
import type { GiveUpReason } from '../events.ts';
import type { CompiledPolicy, Endpoint } from '../policy/compile.ts';
import type { CallPolicy } from '../policy/types.ts';
import type { RoutingActions } from '../routing/actions.ts';

/** Header names are lower-case; a value is a string, or an array for repeated headers. */
export type HeaderRecord = Record<string, string | string[]>;

/**
 * A request body as the pipeline carries it. Strings and bytes can be sent any number of times; a
 * StreamBody says whether it can be opened again (a Blob, FormData) or only once (a stream).
 */
export type RequestBody = string | Uint8Array | StreamBody;

export interface StreamBody {
  readonly replayable: boolean;
  /** Byte length when known up front (sent as content-length). */
  readonly length: number | undefined;
  /** A fresh stream of the body. A one-shot body throws when opened a second time. */
  open(): Readable;
}

export interface MeshRequest {
  method: string;
  /** Scheme, host and port, e.g. "https://10.0.0.7:8443". Set by the endpoint layer when empty. */
  origin: string;
  /** Path and query, starting with "/". */
  path: string;
  headers: HeaderRecord;
  body: RequestBody | null;
}

export interface MeshResponse {
  status: number;
  /** The reason phrase the server sent (HTTP/1.1), if any. */
  statusText?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** The response body, streamed. Whoever receives it must consume or destroy it. */
  body: Readable;
  /** How many attempts the call took; set by the retry layer (1 when absent). */
  attempts?: number;
  /** Why a retryable answer was not retried; set by the retry layer. */
  gaveUp?: GiveUpReason;
  /** Set by the redirect layer when it followed a redirect: the URL of the answer, and true. */
  url?: string | undefined;
  redirected?: boolean | undefined;
}

/** What every layer knows about the call it is handling. */
export interface CallContext {
  readonly service: string;
  /** Route name from a typed contract or a policy route match; undefined for an unnamed path. */
  readonly route: string | undefined;
  /** The policy in force for this call, resolved once when the call starts. */
  readonly policy: CallPolicy;
  /** Where the service can be reached, from policy; the endpoint layer picks one per attempt. */
  readonly endpoints: readonly Endpoint[];
  /** The whole policy the call started under, for errors that say what it knows (lib/routing/no-endpoints.ts). */
  readonly policyInForce: CompiledPolicy;
  /** Split, fault and mirror for the call, from its route or service (none when absent). */
  readonly routing?: RoutingActions | undefined;
  /**
   * The service this attempt is actually sent to when a split chose another than `service` (the
   * logical one, which names the call's policy, breaker and stats); set per attempt by the split layer.
   */
  readonly backend?: string | undefined;
  /** Aborts the call: the caller's signal, the deadline, or a layer that gave up. */
  signal: AbortSignal | undefined;
  /** Absolute deadline (Date.now() based) for the whole call; Infinity when there is none. */
  deadline: number;
  /** 1 for the first attempt; set by the retry layer. */
  attempt: number;
  /** The endpoint (URL) the latest attempt went to; set by the endpoint layer so a retry can go elsewhere. */
  lastEndpoint?: string | undefined;
  /** fetch's redirect mode for the call, read by the redirect layer; undefined is 'follow'. */
  readonly redirect?: 'follow' | 'manual' | 'error' | undefined;
}

export type Handler = (req: MeshRequest, ctx: CallContext) => Promise<MeshResponse>;
export type Middleware = (next: Handler) => Handler;
