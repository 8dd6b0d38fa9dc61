import { ErrorCode, MeshError } from '../errors.ts';
import type { Middleware } from '../pipeline/types.ts';

/**
 * tls.mode `strict`: an attempt to a plain http:// endpoint is refused before a connection is opened,
 * so not one byte of the request leaves in the clear. `permissive` and `disabled` let it through.
 */
export const tlsModeLayer: Middleware = (next) => (req, ctx) => {
  if (ctx.policy.tls.mode === 'strict' && req.origin.startsWith('http:')) {
    return Promise.reject(
      new MeshError(ErrorCode.Tls, `tls.mode is strict for ${ctx.service}: refusing plain http to ${req.origin} (nothing was sent)`, {
        service: ctx.service,
        route: ctx.route,
        retryable: false,
      }),
    );
  }
  return next(req, ctx);
};
