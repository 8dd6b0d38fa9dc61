import { withCallFields } from '../errors.ts';
import type { HeaderRecord, RequestBody } from '../pipeline/types.ts';
import type { CallOptions, OutgoingCall } from './call.ts';
import { startCall } from './call.ts';
import { callHeaders } from './client-defaults.ts';
import type { ClientScope } from './client-defaults.ts';
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
  readonly #scope: ClientScope;

  constructor(scope: ClientScope) {
    this.#scope = scope;
    this.service = scope.service;
  }

  /**
   * WHATWG fetch semantics: resolves to a standard Response for every HTTP status and rejects only
   * when no answer came (network failure, deadline, abort with the signal's reason).
   */
  async fetch(input: string | URL | Request, init: MeshRequestInit = {}): Promise<Response> {
    const request = input instanceof Request ? input : undefined;
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const headers = callHeaders(this.#scope, init.headers ?? request?.headers);
    const rawBody = init.body !== undefined ? init.body : request?.body;
    if (rawBody != null && (method === 'GET' || method === 'HEAD')) {
      throw new TypeError(`Request with ${method} method cannot have body.`);
    }
    const body = rawBody == null ? null : this.#requestBody(rawBody, headers, init.route);
    const { origin, path, url } = target(input, this.service);
    const call: OutgoingCall = { service: this.service, route: init.route, method, origin, path, headers, body, policy: undefined };
    const res = await startCall(this.#scope.core, call, {
      signal: init.signal ?? request?.signal ?? undefined,
      timeout: init.timeout ?? this.#scope.timeout,
      redirect: init.redirect ?? request?.redirect,
    });
    return toWebResponse(res, method, url, call);
  }

  /** A body fetch() cannot send is MESHFETCH_BODY, naming this client's service. */
  #requestBody(raw: unknown, headers: HeaderRecord, route: string | undefined): RequestBody | null {
    try {
      return toRequestBody(raw, headers);
    } catch (err) {
      throw withCallFields(err, { service: this.service, route });
    }
  }

  get<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#scope, undefined, 'GET', path, options) as Promise<T>;
  }

  post<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#scope, undefined, 'POST', path, options) as Promise<T>;
  }

  put<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#scope, undefined, 'PUT', path, options) as Promise<T>;
  }

  patch<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#scope, undefined, 'PATCH', path, options) as Promise<T>;
  }

  delete<T = unknown>(path: string, options: JsonCallOptions = {}): Promise<T> {
    return jsonCall(this.#scope, undefined, 'DELETE', path, options) as Promise<T>;
  }
}
