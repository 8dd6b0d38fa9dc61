import { ErrorCode, MeshError, withCallFields } from '../errors.ts';
import type { MeshErrorOptions } from '../errors.ts';
import type { CallContext } from '../pipeline/types.ts';
import { safeCause, scrubMessage } from './safe-cause.ts';

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** The transport was closed (undici's ClientClosedError / ClientDestroyedError). */
const CLOSED_CODES = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
/** The request itself is malformed (a bad header value, a body whose length lies): a caller's bug. */
const INVALID_REQUEST_CODES = new Set([
  'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_HEADER_VALUE', 'ERR_UNESCAPED_CHARACTERS',
]);
/** got's wrappers: the real code sits on their cause. */
const WRAPPER_CODES = new Set(['ERR_GOT_REQUEST_ERROR', 'ERR_READING_RESPONSE_STREAM', 'ERR_UPLOAD']);
/** got's TimeoutError (code ETIMEDOUT) names the phase that ran out; these are connection phases. */
const CONNECT_PHASES = new Set(['lookup', 'connect', 'secureConnect']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

/** Where a code may sit: on the error, or on a cause a library wrapped it in. */
function codeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !WRAPPER_CODES.has(code)) return code;
  }
  return undefined;
}

/** A MeshError a library wrapped (got wraps whatever destroys its stream, e.g. a one-shot body opened twice). */
function wrappedMeshError(err: unknown): MeshError | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof MeshError) return e;
  }
  return undefined;
}

/** got's TimeoutError carries the phase (`event`) that timed out; other errors have none. */
function timeoutPhaseOf(err: unknown): string | undefined {
  const event = (err as { name?: unknown; event?: unknown } | null)?.event;
  return (err as { name?: unknown }).name === 'TimeoutError' && typeof event === 'string' ? event : undefined;
}

/** A failure's message, with nothing of the request (header values, URL secrets) in it. */
function detailOf(err: unknown): string {
  return err instanceof Error ? scrubMessage(err.message) : typeof err;
}

/** The MeshError for a library failure with a known code; undefined when the code is not known. */
function classify(err: unknown, where: string, base: MeshErrorOptions): MeshError | undefined {
  const code = codeOf(err) ?? '';
  const detail = detailOf(err);
  const options = { cause: safeCause(err), ...base, retryable: true };
  if (CLOSED_CODES.has(code)) {
    return new MeshError(ErrorCode.Closed, `the transport is closed; cannot call ${where}`, { ...options, retryable: false });
  }
  const phase = err && typeof err === 'object' ? timeoutPhaseOf(err) : undefined;
  if (phase !== undefined && !CONNECT_PHASES.has(phase)) {
    // got: `response` (headers), `socket` (idle), `read`, `send` or `request` ran out.
    return new MeshError(ErrorCode.Timeout, `${where} timed out: ${detail}`, options);
  }
  if (CONNECT_CODES.has(code)) return new MeshError(ErrorCode.Connect, `cannot connect to ${where}: ${code}`, options);
  if (TLS_CODE.test(code)) {
    return new MeshError(ErrorCode.Tls, `TLS handshake with ${where} failed: ${code}`, { ...options, retryable: false });
  }
  if (TIMEOUT_CODES.has(code)) return new MeshError(ErrorCode.Timeout, `${where} timed out: ${detail}`, options);
  if (RESET_CODES.has(code)) return new MeshError(ErrorCode.Reset, `connection to ${where} was reset: ${detail}`, options);
  return undefined;
}

/**
 * Maps a transport failure to a MeshError with a stable code. An abort caused by ctx.signal is not a
 * transport failure: the signal's reason is returned as it is, so callers see what aborted them.
 */
export function transportError(err: unknown, ctx: CallContext, origin: string): unknown {
  if (ctx.signal?.aborted) return ctx.signal.reason;
  const where = `${ctx.service} at ${origin}`;
  const base = { service: ctx.service, route: ctx.route };
  const meshError = wrappedMeshError(err);
  if (meshError) return withCallFields(meshError, base);
  const code = codeOf(err);
  if (code !== undefined && INVALID_REQUEST_CODES.has(code)) {
    // As fetch does: a request that cannot be sent is a TypeError, never retried.
    return new TypeError(`invalid request to ${where}: ${detailOf(err)}`, { cause: safeCause(err) });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || (typeof err === 'object' && err !== null && timeoutPhaseOf(err) === 'response')) {
    // Both transports' headers timeout is the policy's perTryTimeout: name it, not the library's words.
    const message = `${where} sent no response headers within perTryTimeout (${ctx.policy.perTryTimeout}ms) on attempt ${ctx.attempt}`;
    return new MeshError(ErrorCode.Timeout, message, { cause: safeCause(err), ...base, retryable: true });
  }
  return (
    classify(err, where, base) ??
    new MeshError(ErrorCode.Reset, `request to ${where} failed: ${detailOf(err)}`, {
      cause: safeCause(err),
      ...base,
      retryable: true,
    })
  );
}

/**
 * Maps a failure while reading a response body (a body timeout, a reset) to a MeshError. The
 * transports already hand up MeshErrors or the reason a caller aborted with; that reason is returned
 * as it is.
 */
export function bodyError(err: unknown): unknown {
  return wrappedMeshError(err) ?? classify(err, 'the response body', {}) ?? err;
}

/** A body stream that closed before its end without saying why. */
export function bodyClosedEarly(): MeshError {
  return new MeshError(ErrorCode.Body, 'the response body was closed before its end');
}
