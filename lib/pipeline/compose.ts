import type { Handler, Middleware } from './types.ts';

/** Wraps `last` in `middlewares`, the first one outermost. Done once per mesh, not per call. */
export function compose(middlewares: readonly Middleware[], last: Handler): Handler {
  let handler = last;
  for (let i = middlewares.length - 1; i >= 0; i--) handler = middlewares[i]!(handler);
  return handler;
}
