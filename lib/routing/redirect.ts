import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext, HeaderRecord, MeshRequest, MeshResponse, Middleware } from '../pipeline/types.ts';
import { canReplay } from '../resilience/retry-rules.ts';
import { safeCause } from '../transport/safe-cause.ts';

/** fetch's redirect modes; undefined is 'follow', fetch's default. */
export type RedirectMode = NonNullable<CallContext['redirect']>;

/** fetch's limit: the 21st redirect of one call is an error. */
export const MAX_REDIRECTS = 20;

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
/** Never sent to an origin outside the service the call was made to (undici's fetch drops the same). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
/** Describe a body that a redirect turned into a GET drops (fetch's request-body-header names). */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];
/** Stands for "the service" while resolving a Location against a request the endpoint layer will place. */
const SERVICE_BASE = 'http://meshfetch.invalid';

function redirectError(ctx: CallContext, message: string, cause?: unknown): MeshError {
  const where = ctx.route ? `${ctx.service} (${ctx.route})` : ctx.service;
  return new MeshError(ErrorCode.Redirect, `call to ${where}: ${message}`, { service: ctx.service, route: ctx.route, attempts: ctx.attempt, cause });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The URL a caller would name for a request: the service URL (http://<service>/path) until an origin is set. */
function requestUrl(req: Pick<MeshRequest, 'origin' | 'path'>, service: string): string {
  return req.origin ? req.origin + req.path : `http://${service}${req.path}`;
}

/** The path prefix the endpoint layer adds for this service: its endpoints' base path when they share one. */
function sharedBasePath(ctx: CallContext): string {
  const first = ctx.endpoints[0]?.basePath ?? '';
  return ctx.endpoints.every((endpoint) => endpoint.basePath === first) ? first : '';
}

/**
 * Where a Location sends the next hop. A request to the service ('' origin) is resolved in the
 * server's path space (the endpoint's base path in front), and a Location back under the base path
 * stays on the service ('' again, for the endpoint layer to place, base path taken off).
 */
function nextTarget(location: string, req: MeshRequest, ctx: CallContext): { origin: string; path: string } {
  const basePath = req.origin ? '' : sharedBasePath(ctx);
  let url: URL;
  try {
    url = new URL(location, (req.origin || SERVICE_BASE) + basePath + req.path);
  } catch (err) {
    // Not the URL parser's error as it is: its `input` is the Location, which may carry a secret.
    throw redirectError(ctx, 'the redirect Location is not a URL', safeCause(err));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw redirectError(ctx, `cannot follow a redirect to a ${url.protocol} URL`);
  if (url.username || url.password) throw redirectError(ctx, 'cannot follow a redirect to a URL with credentials');
  const toService = url.origin === SERVICE_BASE || (url.protocol === 'http:' && url.host === ctx.service.toLowerCase());
  if (!toService) return { origin: url.origin, path: url.pathname + url.search };
  const underBase = basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
  if (underBase) return { origin: '', path: (url.pathname.slice(basePath.length) || '/') + url.search };
  // Outside the base path: only a named endpoint can be sent there.
  return { origin: ctx.endpoints[0]!.origin, path: url.pathname + url.search };
}

/** An origin the policy lists for the call's service (or the service itself): credentials may go there. */
function isServiceOrigin(origin: string, ctx: CallContext): boolean {
  return origin === '' || ctx.endpoints.some((endpoint) => endpoint.origin === origin);
}

function without(headers: HeaderRecord, names: readonly string[]): HeaderRecord {
  const kept: HeaderRecord = { ...headers };
  for (const name of names) delete kept[name];
  return kept;
}

/** The request fetch's "HTTP-redirect fetch" sends next, or a MESHFETCH_REDIRECT error. */
function nextHop(req: MeshRequest, res: MeshResponse, location: string, ctx: CallContext): MeshRequest {
  const target = nextTarget(location, req, ctx);
  let { method, body, headers } = req;
  // 303 turns anything but HEAD into a GET; 301 and 302 turn a POST into one (what browsers do).
  if ((res.status === 303 && method !== 'HEAD') || ((res.status === 301 || res.status === 302) && method === 'POST')) {
    method = 'GET';
    body = null;
    headers = without(headers, BODY_HEADERS);
  } else if (!canReplay(body)) {
    throw redirectError(ctx, `cannot follow a ${res.status} redirect with a one-shot (stream) request body`);
  }
  const crossOrigin = target.origin !== req.origin && !(isServiceOrigin(target.origin, ctx) && isServiceOrigin(req.origin, ctx));
  if (crossOrigin) headers = without(headers, CREDENTIAL_HEADERS);
  return { method, origin: target.origin, path: target.path, headers, body };
}

/**
 * fetch's redirect handling for every entry point (fetch, the JSON helpers, typed routes), by the
 * call's `redirect` mode: 'follow' (the default) follows up to MAX_REDIRECTS hops, 'manual' hands the
 * 3xx answer up, 'error' rejects with MESHFETCH_REDIRECT. Each hop is a new request through the rest
 * of the stack (its own retries and endpoint choice) under the one deadline of the call; it is not a
 * retry (it takes none of the retries or budget) but its attempts are numbered on from the previous
 * hop's, as OpenTelemetry's http.request.resend_count counts redirects; the redirect answer's body is
 * discarded. Credentials (authorization, cookie,
 * proxy-authorization) are dropped for a hop to an origin that is not one of the service's.
 */
export const redirectLayer: Middleware = (next) => async (req, ctx) => {
  const mode = ctx.redirect ?? 'follow';
  let res = await next(req, ctx);
  for (let hops = 0; mode !== 'manual' && REDIRECT_STATUS.has(res.status); hops++) {
    if (mode === 'error') {
      res.body.destroy();
      throw redirectError(ctx, `got a ${res.status} redirect and the call's redirect mode is 'error'`);
    }
    const location = headerValue(res.headers.location);
    if (location === undefined) break; // fetch hands up a redirect status that names no Location
    res.body.destroy();
    if (hops === MAX_REDIRECTS) throw redirectError(ctx, `more than ${MAX_REDIRECTS} redirects`);
    req = nextHop(req, res, location, ctx);
    ctx.attempt++; // the next request of the call: numbered on, though not a retry (the retry layer tells them apart)
    ctx.lastEndpoint = undefined;
    res = await next(req, ctx);
    res.attempts ??= ctx.attempt; // the retry layer sets it only when it retried: a hop's first answer is this attempt
    res.url = requestUrl(req, ctx.service);
    res.redirected = true;
  }
  return res;
};
