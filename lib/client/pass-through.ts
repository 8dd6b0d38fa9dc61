import { ErrorCode, MeshError } from '../errors.ts';
import { MAX_TIMER_MS } from '../policy/duration.ts';
import { callerTimeout } from './call.ts';
import type { MeshRequestInit } from './service-client.ts';

/** The platform fetch, captured so that passing through still works after a user swaps globalThis.fetch. */
const platformFetch = globalThis.fetch;

/**
 * A URL that is no service's goes to the platform fetch, with the mesh's own init keys taken out and
 * `timeout` honoured as on a mesh call: the whole fetch, body included, rejects with MESHFETCH_TIMEOUT.
 */
export function passThrough(input: string | URL | Request, init: MeshRequestInit | undefined): Promise<Response> {
  if (init === undefined) return platformFetch(input);
  const { timeout, route: _route, ...fetchInit } = init;
  const ms = callerTimeout(timeout);
  if (ms > MAX_TIMER_MS) return platformFetch(input, fetchInit);
  const controller = new AbortController();
  const where = input instanceof Request ? input.url : String(input);
  const timer = setTimeout(
    () => controller.abort(new MeshError(ErrorCode.Timeout, `fetch ${new URL(where).origin} exceeded its ${ms}ms timeout`)),
    ms,
  );
  // The body may be read long after fetch() resolves, so the timer stays armed; unref'd, it never holds the process.
  timer.unref();
  const callerSignal = fetchInit.signal ?? (input instanceof Request ? input.signal : undefined);
  const signal = callerSignal ? AbortSignal.any([callerSignal, controller.signal]) : controller.signal;
  return platformFetch(input, { ...fetchInit, signal }).catch((err: unknown) => {
    clearTimeout(timer);
    throw err;
  });
}
