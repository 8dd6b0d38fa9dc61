import { ErrorCode, MeshError } from '../errors.ts';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Middleware } from '../pipeline/types.ts';

function whereOf(ctx: CallContext): string {
  return ctx.route ? `${ctx.service} (${ctx.route})` : ctx.service;
}

/** Why a call still under way when the mesh closed (after its grace period) was aborted. */
export function closedError(ctx: CallContext): MeshError {
  return new MeshError(ErrorCode.Closed, `the mesh was closed before the call to ${whereOf(ctx)} finished`, {
    service: ctx.service,
    route: ctx.route,
    attempts: ctx.attempt,
  });
}

/**
 * The whole-call deadline: the earlier of the caller's deadline and the policy's `timeout`. Every
 * attempt, backoff and the response body run under one AbortSignal that fires at the deadline, when
 * the caller aborts, or when the mesh shuts down (MESHFETCH_CLOSED); the timer is released when the
 * body closes or the call fails.
 */
export function deadlineLayer(deps: Pick<LayerDeps, 'calls'>): Middleware {
  const inFlight = deps.calls;
  return (next) => async (req, ctx) => {
    const callerSignal = ctx.signal;
    if (callerSignal?.aborted) throw callerSignal.reason;
    const now = Date.now();
    const deadline = Math.min(ctx.deadline, now + ctx.policy.timeout);
    const budget = deadline - now;
    const exceeded = (attempts: number | undefined): MeshError =>
      new MeshError(ErrorCode.Timeout, `call to ${whereOf(ctx)} exceeded its ${Math.max(0, budget)}ms deadline`, {
        service: ctx.service,
        route: ctx.route,
        attempts,
      });
    // A deadline that has already passed (an incoming request with no time left) sends nothing.
    if (budget <= 0) throw exceeded(undefined);
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort(callerSignal!.reason);
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => controller.abort(exceeded(ctx.attempt)), budget);
    inFlight.add(controller, ctx);
    const release = (): void => {
      clearTimeout(timer);
      inFlight.delete(controller);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    };
    ctx.signal = controller.signal;
    ctx.deadline = deadline;
    try {
      const res = await next(req, ctx);
      if (res.body.destroyed) release();
      else res.body.once('close', release);
      return res;
    } catch (err) {
      release();
      throw controller.signal.aborted ? controller.signal.reason : err;
    }
  };
}
