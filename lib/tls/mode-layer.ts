import { ErrorCode, MeshError } from '../errors.ts';
import type { Middleware } from '../pipeline/types.ts';
import { backendPolicy } from '../routing/split.ts';

/**
 * tls.mode `strict`: an attempt to a plain http:// endpoint is refused before a connection is opened,
 * so not one byte of the request leaves in the clear. `permissive` and `disabled` let it through.
 */
export const tlsModeLayer: Middleware = (next) => (req, ctx) => {
  // A split's attempt goes by its backend's tls.mode: the backend is where it is sent.
  if (backendPolicy(ctx).tls.mode === 'strict' && req.origin.startsWith('http:')) {
    return Promise.reject(
      new MeshError(ErrorCode.Tls, `tls.mode is strict for ${ctx.backend ?? ctx.service}: refusing plain http to ${req.origin} (nothing was sent)`, {
        service: ctx.service,
        route: ctx.route,
        retryable: false,
      }),
    );
  }
  return next(req, ctx);
};
