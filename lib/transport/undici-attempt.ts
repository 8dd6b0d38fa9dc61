import { Readable } from 'node:stream';
import { errors } from 'undici';
import type { Dispatcher } from 'undici';
import type { CallContext, MeshResponse } from '../pipeline/types.ts';
import { transportError } from './errors.ts';

const BODY_HIGH_WATER_MARK = 64 * 1024;

class BodyDestroyed extends Error {
  override readonly name = 'AbortError';
  readonly code = 'UND_ERR_ABORTED';
}

/**
 * One undici dispatch, answered as a MeshResponse whose body streams with backpressure. It takes the
 * call's AbortSignal itself rather than handing it to undici's request(): that path costs about
 * 8 µs of CPU per call on this machine (measured in bench/), which is more than the whole pipeline.
 * An abort before the answer rejects at once with the signal's reason (even while the request waits
 * for a connection); after it, destroys the body with it. Destroying the body early aborts the
 * request, so its socket is not reused half-read. The headers timeout (the policy's perTryTimeout) is
 * its own timer, started when the request is written to a connection (onRequestStart), so time spent
 * queued for a connection of a busy pool is not counted against the attempt (the call's deadline
 * still bounds it); undici's own timer is coarse, firing up to about a second late. Every failure is
 * handed up mapped by transportError: the call's abort reason, or a MeshError.
 */
export class UndiciAttempt implements Dispatcher.DispatchHandler {
  readonly #resolve: (res: MeshResponse) => void;
  readonly #reject: (err: unknown) => void;
  readonly #ctx: CallContext;
  readonly #origin: string;
  readonly #signal: AbortSignal | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #body: Readable | undefined;
  #ended = false;
  #reason: unknown;
  #headersTimer: NodeJS.Timeout | undefined;

  constructor(ctx: CallContext, origin: string, resolve: (res: MeshResponse) => void, reject: (err: unknown) => void) {
    this.#ctx = ctx;
    this.#origin = origin;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = ctx.signal;
    ctx.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => this.#abort(this.#signal!.reason);

  readonly #onHeadersTimeout = (): void => this.#abort(new errors.HeadersTimeoutError());

  #abort(reason: unknown): void {
    if (this.#reason !== undefined || this.#ended) return;
    this.#reason = reason;
    clearTimeout(this.#headersTimer);
    const mapped = this.#mapped(reason);
    if (this.#body) return void this.#body.destroy(mapped as Error);
    this.#controller?.abort(reason as Error);
    this.#reject(mapped);
  }

  #mapped(err: unknown): unknown {
    return transportError(err, this.#ctx, this.#origin);
  }

  #release(): void {
    clearTimeout(this.#headersTimer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#reason !== undefined) return void controller.abort(this.#reason as Error);
    this.#controller = controller;
    const headersTimeout = this.#ctx.policy.perTryTimeout;
    if (headersTimeout > 0 && headersTimeout < Infinity) this.#headersTimer = setTimeout(this.#onHeadersTimeout, headersTimeout);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: MeshResponse['headers'],
    statusText: string,
  ): void {
    if (status < 200) return;
    clearTimeout(this.#headersTimer);
    const body = new Readable({
      highWaterMark: BODY_HIGH_WATER_MARK,
      read: () => controller.resume(),
      destroy: (err, callback) => {
        this.#release();
        if (!this.#ended) controller.abort(err ?? new BodyDestroyed('the response body was destroyed before its end'));
        callback(err);
      },
    });
    this.#body = body;
    this.#resolve({ status, statusText, headers, body });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#body && !this.#body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#release();
    this.#body?.push(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#ended = true;
    this.#release();
    if (this.#body) this.#body.destroy(this.#mapped(err) as Error);
    else this.#reject(this.#mapped(err));
  }
}
