import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext, Handler, HeaderRecord, MeshResponse, RequestBody } from '../pipeline/types.ts';
import type { Endpoint } from '../policy/compile.ts';
import type { CallPolicy } from '../policy/types.ts';
import { resolveCall } from '../policy/resolve.ts';
import type { PolicyStore } from '../policy/store.ts';
import { currentIncomingCall } from '../resilience/deadline-context.ts';

/** What every client of one mesh shares. */
export interface MeshCore {
  readonly store: PolicyStore;
  readonly handler: Handler;
  /** How long a call made before the first policy arrives waits for it. */
  readonly readyTimeout: number;
  closed: boolean;
}

/** Per-call options shared by fetch(), the JSON helpers and typed routes. */
export interface CallOptions {
  /** Aborts the call; the call rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Milliseconds for the whole call; can only shorten the policy's `timeout`. */
  timeout?: number | undefined;
  /** fetch's redirect mode: 'follow' (default, up to 20 hops), 'manual' or 'error'. */
  redirect?: RequestRedirect | undefined;
}

export interface OutgoingCall {
  readonly service: string;
  /** The route name given by the caller; startCall replaces it with the one the policy matched. */
  route: string | undefined;
  readonly method: string;
  /** Set when the caller named an absolute URL; otherwise the endpoint layer picks one. */
  readonly origin: string;
  readonly path: string;
  readonly headers: HeaderRecord;
  readonly body: RequestBody | null;
  /** The policy the call runs under; set by startCall. */
  policy: CallPolicy | undefined;
}

const NO_ENDPOINTS: readonly Endpoint[] = [];

/**
 * A caller's `timeout` option, checked: milliseconds, a number ≥ 0 (Infinity: none). A longer one
 * than a timer can hold is bounded by the policy's `timeout`, or, where no policy applies, means none.
 */
export function callerTimeout(timeout: unknown): number {
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw new TypeError(`timeout: expected milliseconds (a number of at least 0), got ${typeof timeout === 'number' ? timeout : typeof timeout}`);
  }
  return timeout;
}

/**
 * Waits for a first policy to be in force, at most the mesh's readyTimeout or the call's own timeout,
 * whichever is shorter; the call's signal aborts the wait with its reason.
 */
export function waitForPolicy(core: MeshCore, service: string, options: CallOptions = {}): Promise<void> {
  if (core.store.current) return Promise.resolve();
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const limit = Math.max(0, Math.min(core.readyTimeout, callerTimeout(options.timeout), (currentIncomingCall()?.deadline ?? Infinity) - Date.now()));
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => settle(signal!.reason);
    const timer = setTimeout(
      () => settle(new MeshError(ErrorCode.Config, `no policy in force after ${limit}ms; cannot call ${service}`, { service })),
      limit,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    void core.store.ready().then(() => settle());
  });
}

const REDIRECT_MODES: ReadonlySet<unknown> = new Set(['follow', 'manual', 'error']);

/** Sends one logical call down the pipeline under the policy in force right now. */
export function startCall(core: MeshCore, call: OutgoingCall, options: CallOptions): Promise<MeshResponse> {
  if (options.redirect !== undefined && !REDIRECT_MODES.has(options.redirect)) {
    // As fetch does for a bad RequestInit.
    return Promise.reject(new TypeError(`redirect: expected 'follow', 'manual' or 'error', got ${JSON.stringify(options.redirect)}`));
  }
  if (core.closed) return Promise.reject(new MeshError(ErrorCode.Closed, `mesh is closed; cannot call ${call.service}`, { service: call.service }));
  const policy = core.store.current;
  if (policy === undefined) {
    const waitStarted = Date.now();
    const remaining = (): CallOptions => (options.timeout === undefined ? options : { ...options, timeout: Math.max(0, options.timeout - (Date.now() - waitStarted)) });
    return waitForPolicy(core, call.service, options).then(() => startCall(core, call, remaining()));
  }
  const resolved = resolveCall(policy, call.service, call.route, call.method, call.path, call.headers);
  call.route = resolved.route;
  call.policy = resolved.policy;
  const incoming = currentIncomingCall();
  let deadline = options.timeout === undefined ? Infinity : Date.now() + callerTimeout(options.timeout);
  let signal = options.signal;
  if (incoming) {
    deadline = Math.min(deadline, incoming.deadline);
    signal = signal && incoming.signal ? AbortSignal.any([signal, incoming.signal]) : (signal ?? incoming.signal);
  }
  const ctx: CallContext = {
    service: call.service,
    route: resolved.route,
    policy: resolved.policy,
    endpoints: resolved.service?.endpoints ?? NO_ENDPOINTS,
    policyInForce: policy,
    routing: resolved.routing,
    signal,
    deadline,
    attempt: 1,
    lastEndpoint: undefined,
    redirect: options.redirect,
  };
  return core.handler(
    { method: call.method, origin: call.origin, path: call.path, headers: call.headers, body: call.body },
    ctx,
  );
}
