import { Readable } from 'node:stream';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Middleware, MeshResponse } from '../pipeline/types.ts';
import { delay } from '../resilience/retry-rules.ts';
import { fires } from './actions.ts';
import type { FaultAbort } from './actions.ts';

/** Marks an answer the mesh made up, so that nobody mistakes it for the upstream's. */
export const INJECTED_HEADER = 'x-meshfetch-fault';

function abortResponse(abort: FaultAbort): MeshResponse {
  return { status: abort.status, headers: { [INJECTED_HEADER]: 'abort', 'content-length': '0' }, body: Readable.from([]) };
}

function announce(deps: LayerDeps, ctx: CallContext, kind: 'abort' | 'delay', status: number | undefined, duration: number | undefined): void {
  if (deps.events.has('fault')) deps.events.emit('fault', { service: ctx.service, route: ctx.route, backend: ctx.backend ?? ctx.service, kind, status, duration });
}

/**
 * Fault injection, per attempt, before the request leaves: a delay holds the attempt (within the
 * call's deadline), an abort answers with the configured status and no socket is opened. Both are
 * announced as `fault` events (a span event on the call span, a count in stats), and an injected
 * answer carries `x-meshfetch-fault: abort`. Inside the retry and under the breaker, so that an
 * injected fault exercises them exactly as a real one would.
 */
export function faultLayer(deps: LayerDeps): Middleware {
  return (next) => (req, ctx) => {
    const fault = ctx.routing?.fault;
    if (!fault) return next(req, ctx);
    const { abort, delay: hold } = fault;
    if (abort && fires(abort.percent, deps.random())) {
      announce(deps, ctx, 'abort', abort.status, undefined);
      return Promise.resolve(abortResponse(abort));
    }
    if (hold && fires(hold.percent, deps.random())) {
      announce(deps, ctx, 'delay', undefined, hold.duration);
      return delay(hold.duration, ctx.signal).then(() => next(req, ctx));
    }
    return next(req, ctx);
  };
}
