import type { CallOptions, MeshCore } from './call.ts';
import { startCall } from './call.ts';
import { toHeaderRecord } from './headers.ts';
import { jsonCall } from './json-call.ts';
import type { JsonCallOptions } from './json-call.ts';
import { toRequestBody } from '../transport/request-body.ts';
import { toWebResponse } from './web-response.ts';
import { refuseCredentials } from './fetch-target.ts';
import { withoutFragment } from './query.ts';

/** fetch()'s init, plus a whole-call timeout in milliseconds and an explicit route name. */
export interface MeshRequestInit extends RequestInit, Omit<CallOptions, 'signal'> {
  route?: string;
}

/** Where a fetch() input points: a path of this service, or an absolute URL. A #fragment is never sent. */
function target(input: string | URL | Request, service: string): { origin: string; path: string; url: string } {
  const raw = input instanceof Request ? input.url : String(input);
  if (raw.startsWith('/')) {
    const path = withoutFragment(raw);
    return { origin: '', path, url: `http://${service}${path}` };
  }
  const url = new URL(raw);
  refuseCredentials(url);
  return { origin: url.origin, path: url.pathname + url.search, url: url.href };
}

/** A client for one service. Where it calls, and how, comes from the policy in force at each call. */
export class ServiceClient {
  readonly service: string;
  readonly #core: MeshCore;

  constructor(core: MeshCore, service: string) {
    this.#core = core;
    this.service = service;
  }

  /**
   * WHATWG fetch semantics: resolves to a standard Response for every HTTP status and rejects only
   * when no answer came (network failure, deadline, abort with the signal's reason).
   */
  async fetch(input: string | URL | Request, init: MeshRequestInit = {}): Promise<Response> {
    const request = input instanceof Request ? input : undefined;
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const headers = toHeaderRecord(init.headers ?? request?.headers);
    const rawBody = init.body !== undefined ? init.body : request?.body;
    if (rawBody != null && (method === 'GET' || method === 'HEAD')) {
      throw new TypeError(`Request with ${method} method cannot have body.`);
    }
    const body = rawBody == null ? null : toRequestBody(rawBody, headers);
    const { origin, path, url } = target(input, this.service);
    const res = await startCall(
      this.#core,
      { service: this.service, route: init.route, method, origin, path, headers, body, policy: undefined },
      { signal: init.signal ?? request?.signal ?? undefined, timeout: init.timeout },
    );
    return toWebResponse(res, method, url);
  }

  get<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#core, this.service, undefined, 'GET', path, options) as Promise<T>;
  }

  post<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#core, this.service, undefined, 'POST', path, options) as Promise<T>;
  }

  put<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#core, this.service, undefined, 'PUT', path, options) as Promise<T>;
  }

  patch<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#core, this.service, undefined, 'PATCH', path, options) as Promise<T>;
  }

  delete<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#core, this.service, undefined, 'DELETE', path, options) as Promise<T>;
  }
}
