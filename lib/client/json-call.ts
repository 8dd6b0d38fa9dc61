import { HttpStatusError, withCallFields } from '../errors.ts';
import type { HeaderRecord, MeshResponse, RequestBody } from '../pipeline/types.ts';
import { toRequestBody } from '../transport/request-body.ts';
import { bodyTooLarge, readErrorBody, readJson } from '../transport/response-body.ts';
import type { CallOptions, OutgoingCall } from './call.ts';
import { startCall } from './call.ts';
import { callHeaders } from './client-defaults.ts';
import type { ClientScope } from './client-defaults.ts';
import { withQuery } from './query.ts';
import type { QueryParams } from './query.ts';

/** Options of the JSON helpers (get, post, …) and of typed routes. */
export interface JsonCallOptions extends CallOptions {
  query?: QueryParams;
  headers?: HeadersInit | Record<string, string | string[] | undefined>;
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /** A raw body of any fetch kind, when the body is not JSON. */
  body?: unknown;
}

function requestBody(method: string, path: string, options: JsonCallOptions, headers: HeaderRecord): RequestBody | null {
  const hasJson = options.json !== undefined;
  const hasBody = options.body !== undefined && options.body !== null;
  if (hasJson && hasBody) throw new TypeError(`${method} ${path.split('?', 1)[0]}: pass json or body, not both`);
  if ((hasJson || hasBody) && (method === 'GET' || method === 'HEAD')) throw new TypeError(`Request with ${method} method cannot have body.`);
  if (hasJson) {
    headers['content-type'] ??= 'application/json';
    return JSON.stringify(options.json);
  }
  return hasBody ? toRequestBody(options.body, headers) : null;
}

/** A 2xx body of at most the policy's jsonBodyLimit, parsed; its errors name the call's service, route and attempts. */
async function readLimitedJson(res: MeshResponse, call: OutgoingCall): Promise<unknown> {
  const limit = call.policy!.jsonBodyLimit;
  try {
    // A body that says up front it is too large is refused before any of it is read.
    if (Number(res.headers['content-length']) > limit) {
      res.body.destroy();
      throw bodyTooLarge(limit);
    }
    return await readJson(res.body, limit);
  } catch (err) {
    throw withCallFields(err, { service: call.service, route: call.route, attempts: res.attempts ?? 1 });
  }
}

/**
 * One JSON call: no WHATWG Response is built. Resolves to the parsed body of a 2xx answer (undefined
 * when it is empty) and rejects with HttpStatusError, carrying status and body, otherwise.
 */
export async function jsonCall(
  scope: ClientScope,
  route: string | undefined,
  method: string,
  path: string,
  options: JsonCallOptions,
): Promise<unknown> {
  const { service } = scope;
  const headers = callHeaders(scope, options.headers);
  headers.accept ??= 'application/json';
  let body: RequestBody | null;
  try {
    body = requestBody(method, path, options, headers);
  } catch (err) {
    throw withCallFields(err, { service, route });
  }
  const call: OutgoingCall = { service, route, method, origin: '', path: withQuery(path, options.query), headers, body, policy: undefined };
  const timeout = options.timeout ?? scope.timeout;
  const res = await startCall(scope.core, call, timeout === options.timeout ? options : { ...options, timeout });
  if (res.status >= 200 && res.status < 300) {
    if (method !== 'HEAD' && res.status !== 204) return readLimitedJson(res, call);
    res.body.resume();
    return undefined;
  }
  const errorBody = await readErrorBody(res.body, res.headers['content-type']);
  throw new HttpStatusError(res.status, errorBody, res.headers, {
    service,
    route: call.route,
    method,
    path,
    attempts: res.attempts ?? 1,
    gaveUp: res.gaveUp,
  });
}
