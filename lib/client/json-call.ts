import { HttpStatusError, MeshError } from '../errors.ts';
import type { HeaderRecord, MeshResponse, RequestBody } from '../pipeline/types.ts';
import { toRequestBody } from '../transport/request-body.ts';
import { bodyTooLarge, readErrorBody, readJson } from '../transport/response-body.ts';
import type { CallOptions, MeshCore, OutgoingCall } from './call.ts';
import { startCall } from './call.ts';
import { toHeaderRecord } from './headers.ts';
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

function requestBody(options: JsonCallOptions, headers: HeaderRecord): RequestBody | null {
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    return JSON.stringify(options.json);
  }
  return options.body === undefined ? null : toRequestBody(options.body, headers);
}

/** A 2xx body of at most the policy's jsonBodyLimit, parsed; its errors name the call's service and route. */
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
    if (err instanceof MeshError) {
      err.service ??= call.service;
      err.route ??= call.route;
    }
    throw err;
  }
}

/**
 * One JSON call: no WHATWG Response is built. Resolves to the parsed body of a 2xx answer (undefined
 * when it is empty) and rejects with HttpStatusError, carrying status and body, otherwise.
 */
export async function jsonCall(
  core: MeshCore,
  service: string,
  route: string | undefined,
  method: string,
  path: string,
  options: JsonCallOptions,
): Promise<unknown> {
  const headers = toHeaderRecord(options.headers);
  headers.accept ??= 'application/json';
  const body = requestBody(options, headers);
  const call: OutgoingCall = { service, route, method, origin: '', path: withQuery(path, options.query), headers, body, policy: undefined };
  const res = await startCall(core, call, options);
  if (res.status >= 200 && res.status < 300) {
    if (method !== 'HEAD' && res.status !== 204) return readLimitedJson(res, call);
    res.body.resume();
    return undefined;
  }
  const errorBody = await readErrorBody(res.body, res.headers['content-type']);
  throw new HttpStatusError(res.status, errorBody, res.headers, {
    service,
    route: call.route,
    attempts: res.attempts ?? 1,
    gaveUp: res.gaveUp,
  });
}
