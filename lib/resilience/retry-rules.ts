import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext, MeshRequest, RequestBody } from '../pipeline/types.ts';
import type { RetryPolicy } from '../policy/types.ts';

const statusSets = new WeakMap<RetryPolicy, ReadonlySet<number>>();

/** The statuses a retry policy retries on, as a set made once per resolved policy. */
export function retryStatuses(retry: RetryPolicy): ReadonlySet<number> {
  let set = statusSets.get(retry);
  if (!set) statusSets.set(retry, (set = new Set(retry.on.filter((c): c is number => typeof c === 'number'))));
  return set;
}

/** Whether a failed attempt is one of the policy's retry conditions. */
export function isRetryableFailure(err: unknown, retry: RetryPolicy, ctx: CallContext): boolean {
  if (!(err instanceof MeshError) || ctx.signal?.aborted) return false;
  switch (err.code) {
    case ErrorCode.Connect:
      return retry.on.includes('connect-failure');
    case ErrorCode.Reset:
      return retry.on.includes('reset');
    case ErrorCode.Timeout:
      return err.retryable && retry.on.includes('per-try-timeout');
    default:
      return false;
  }
}

/** Safe to have two copies in flight at once (hedging): an idempotent method, or a route that opts in. */
export function mayRunConcurrently(req: MeshRequest, ctx: CallContext, methods: readonly string[]): boolean {
  return ctx.policy.idempotent || methods.includes(req.method);
}

/**
 * Safe to send again once the previous copy has ended (retrying): as for hedging, or any method with
 * an Idempotency-Key header. A key allows sequential retries only: the server deduplicates by key,
 * and answers a second copy that arrives while the first is in flight with 409 (Stripe does).
 */
export function mayRepeat(req: MeshRequest, ctx: CallContext, methods: readonly string[]): boolean {
  return mayRunConcurrently(req, ctx, methods) || req.headers['idempotency-key'] !== undefined;
}

/** A one-shot stream can be sent once only; strings, bytes, Blobs and FormData can be sent again. */
export function canReplay(body: RequestBody | null): boolean {
  return body === null || typeof body === 'string' || body instanceof Uint8Array || body.replayable;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
