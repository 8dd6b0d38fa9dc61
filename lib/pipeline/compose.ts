import type { Handler, Middleware } from './types.ts';

/** Wraps `last` in `middlewares`, the first one outermost. Done once per mesh, not per call. */
export function compose(middlewares: readonly Middleware[], last: Handler): Handler {
  let handler = last;
  for (let i = middlewares.length - 1; i >= 0; i--) handler = middlewares[i]!(handler);
  return handler;
}

/**
 * `handler`, rejecting where it would throw. The user's code (a middleware, a transport) is run through
 * this, so that every layer sees a failed call as a rejection: what a layer holds for the call (a
 * bulkhead slot, a breaker's call in flight, an endpoint's pending count) is settled on it, and a
 * hedge sending a copy from its timer is not thrown out of (an uncaught exception).
 */
export function rejectingThrows(handler: Handler): Handler {
  return (req, ctx) => {
    try {
      return handler(req, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  };
}
