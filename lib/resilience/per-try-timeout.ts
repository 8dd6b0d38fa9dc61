import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext, Middleware } from '../pipeline/types.ts';

/**
 * Bounds one attempt, from sending the request to its response headers, by `perTryTimeout`. The
 * attempt runs under its own signal, aborted by the timer or by the call's signal; a per-try timeout
 * is a retryable MESHFETCH_TIMEOUT. When less time than that is left before the deadline, the
 * deadline ends the attempt first and no timer is set.
 */
export const perTryTimeoutLayer: Middleware = (next) => async (req, ctx) => {
  const limit = ctx.policy.perTryTimeout;
  if (ctx.deadline - Date.now() <= limit) return next(req, ctx);
  const parent = ctx.signal;
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent!.reason);
  parent?.addEventListener('abort', onParentAbort, { once: true });
  const unlink = (): void => parent?.removeEventListener('abort', onParentAbort);
  const timer = setTimeout(() => controller.abort(perTryError(ctx, limit)), limit);
  const attempt: CallContext = { ...ctx, signal: controller.signal };
  try {
    const res = await next(req, attempt);
    clearTimeout(timer);
    // The call's signal must still reach the body (a deadline, a caller's abort) until it closes.
    if (res.body.destroyed) unlink();
    else res.body.once('close', unlink);
    return res;
  } catch (err) {
    clearTimeout(timer);
    unlink();
    throw controller.signal.aborted ? controller.signal.reason : err;
  }
};

function perTryError(ctx: CallContext, limit: number): MeshError {
  const where = ctx.route ? `${ctx.service} (${ctx.route})` : ctx.service;
  return new MeshError(ErrorCode.Timeout, `attempt ${ctx.attempt} to ${where} had no answer within its ${limit}ms perTryTimeout`, {
    service: ctx.service,
    route: ctx.route,
    retryable: true,
  });
}
