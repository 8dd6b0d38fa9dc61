import { AsyncLocalStorage } from 'node:async_hooks';
import { context, propagation, trace } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, MeshError } from '../errors.ts';

/** Remaining milliseconds of the caller's deadline, sent with every attempt (like grpc-timeout). */
export const DEADLINE_HEADER = 'x-meshfetch-deadline-ms';
/** The attempt number (1, 2, …) of this request within its logical call. */
export const ATTEMPT_HEADER = 'x-meshfetch-attempt';

/** The deadline and abort signal of the request a server is handling, inherited by the calls it makes. */
export interface IncomingCall {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
}

const incoming = new AsyncLocalStorage<IncomingCall>();
const MAX_PROPAGATED_MS = 24 * 3_600_000;

/** The incoming call whose handler is running now, if a server wrapped it with withIncomingDeadline(). */
export function currentIncomingCall(): IncomingCall | undefined {
  return incoming.getStore();
}

/** The absolute deadline (Date.now() based) a request carries, or undefined when it carries none. */
export function deadlineFromRequest(req: IncomingMessage, now = Date.now()): number | undefined {
  const raw = req.headers[DEADLINE_HEADER];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return now + Math.min(Number(value), MAX_PROPAGATED_MS);
}

/** Runs `fn` so that every mesh call made inside it ends by `deadline` and aborts with `signal`. */
export function runWithDeadline<T>(call: IncomingCall, fn: () => T): T {
  return incoming.run(call, fn);
}

/**
 * The trace context the handler runs in: the server span an HTTP instrumentation already started (it
 * continues the caller's trace), else the caller's context extracted by the registered propagator.
 */
function incomingTraceContext(req: IncomingMessage): ReturnType<typeof context.active> {
  const active = context.active();
  return trace.getSpan(active) ? active : propagation.extract(active, req.headers);
}

/**
 * Wraps a node:http request handler: the calls it makes through any mesh inherit the caller's
 * deadline from the request header, and are aborted when the caller goes away before the answer.
 * They also continue the caller's trace (W3C traceparent, or whatever propagator is registered).
 */
export function withIncomingDeadline<Req extends IncomingMessage, Res extends ServerResponse>(
  handler: (req: Req, res: Res) => unknown,
): (req: Req, res: Res) => unknown {
  return (req, res) => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) {
        controller.abort(new MeshError(ErrorCode.Timeout, 'the incoming request was closed by its caller before the answer', { retryable: false }));
      }
    });
    const deadline = deadlineFromRequest(req) ?? Infinity;
    const call = { deadline, signal: controller.signal };
    return context.with(incomingTraceContext(req), () => incoming.run(call, () => handler(req, res)));
  };
}
