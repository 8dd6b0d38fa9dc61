import { ErrorCode, stacklessError } from '../errors.ts';
import type { MeshError } from '../errors.ts';
import type { MeshEvents } from '../events.ts';
import type { CallContext, MeshResponse } from '../pipeline/types.ts';

/** The error (and `limited` event) for a call a concurrency or rate limit refused before it was sent. */
export function limitedError(events: MeshEvents, ctx: CallContext, limit: 'concurrency' | 'rate', detail: string): MeshError {
  if (events.has('limited')) events.emit('limited', { service: ctx.service, route: ctx.route, limit });
  const code = limit === 'rate' ? ErrorCode.RateLimited : ErrorCode.ConcurrencyLimit;
  return stacklessError(code, `call to ${ctx.service} refused by its ${limit} limit (${detail})`, {
    service: ctx.service,
    route: ctx.route,
    retryable: false,
  });
}

/** Calls `release` once the call is over: when it failed, or when its response body has closed. */
export function releaseWhenDone(call: Promise<MeshResponse>, release: () => void): Promise<MeshResponse> {
  return call.then(
    (res) => {
      if (res.body.destroyed) release();
      else res.body.on('close', release);
      return res;
    },
    (err: unknown) => {
      release();
      throw err;
    },
  );
}
