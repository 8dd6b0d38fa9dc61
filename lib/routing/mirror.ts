import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Handler, MeshRequest, Middleware } from '../pipeline/types.ts';
import { canReplay } from '../resilience/retry-rules.ts';
import { fires, NO_ROUTING } from './actions.ts';
import type { Mirror } from './actions.ts';

/** Copies in flight per mirror service; a copy beyond it is dropped, never queued. */
export const MIRROR_CONCURRENCY = 16;
/** Tells the mirror that a request is a copy (Envoy appends "-shadow" to the host for the same reason). */
export const MIRROR_HEADER = 'x-meshfetch-mirror';

/**
 * Mirroring (shadowing): for `percent` % of calls, a copy goes to the mirror service, fire and forget.
 * The copy starts after the real call has been handed on, is never retried or hedged, is dropped when
 * MIRROR_CONCURRENCY copies to that service are in flight or the body cannot be sent twice, runs
 * under the mirror service's own timeout (not the caller's signal, so ending the real call does not
 * cancel it), and its answer is read and thrown away. A failed copy is counted as a `mirror` event,
 * nothing else.
 */
export function mirrorLayer(deps: LayerDeps): Middleware {
  /** Keys are service names from the policy (validated), so this stays as small as the policy. */
  const inFlight = new Map<string, number>();

  function sendCopy(next: Handler, req: MeshRequest, ctx: CallContext, mirror: Mirror): void {
    const target = ctx.policyInForce.services.get(mirror.service);
    const running = inFlight.get(mirror.service) ?? 0;
    if (!target || running >= MIRROR_CONCURRENCY || deps.shutdown.aborted) return announce(ctx, mirror, 'dropped');
    inFlight.set(mirror.service, running + 1);
    const policy = { ...target.policy, retry: null, hedge: null };
    const signal = AbortSignal.any([deps.shutdown, AbortSignal.timeout(policy.timeout)]);
    const copyCtx: CallContext = {
      service: mirror.service,
      route: ctx.route,
      policy,
      endpoints: target.endpoints,
      policyInForce: ctx.policyInForce,
      routing: NO_ROUTING,
      signal,
      deadline: Date.now() + policy.timeout,
      attempt: 1,
    };
    const copy: MeshRequest = { ...req, headers: { ...req.headers, [MIRROR_HEADER]: '1' } };
    const done = (outcome: 'sent' | 'failed'): void => {
      const left = (inFlight.get(mirror.service) ?? 1) - 1;
      if (left === 0) inFlight.delete(mirror.service);
      else inFlight.set(mirror.service, left);
      announce(ctx, mirror, outcome);
    };
    next(copy, copyCtx).then(
      (res) => {
        res.body.on('error', () => {});
        res.body.on('close', () => done('sent'));
        res.body.resume();
      },
      () => done('failed'),
    );
  }

  function announce(ctx: CallContext, mirror: Mirror, outcome: 'sent' | 'failed' | 'dropped'): void {
    if (deps.events.has('mirror')) deps.events.emit('mirror', { service: ctx.service, route: ctx.route, mirror: mirror.service, outcome });
  }

  return (next) => (req, ctx) => {
    const mirror = ctx.routing?.mirror;
    const pending = next(req, ctx);
    if (mirror && !req.origin && fires(mirror.percent, deps.random())) {
      if (canReplay(req.body)) queueMicrotask(() => sendCopy(next, req, ctx, mirror));
      else announce(ctx, mirror, 'dropped');
    }
    return pending;
  };
}
