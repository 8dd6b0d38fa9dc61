import { Readable } from 'node:stream';
import { errors } from 'undici';
import type { Dispatcher } from 'undici';
import type { MeshResponse } from '../pipeline/types.ts';

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
 * its own timer: undici's is coarse, firing up to about a second late.
 */
export class UndiciAttempt implements Dispatcher.DispatchHandler {
  readonly #resolve: (res: MeshResponse) => void;
  readonly #reject: (err: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #body: Readable | undefined;
  #ended = false;
  #reason: unknown;
  #headersTimer: NodeJS.Timeout | undefined;

  constructor(
    signal: AbortSignal | undefined,
    headersTimeout: number,
    resolve: (res: MeshResponse) => void,
    reject: (err: unknown) => void,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (headersTimeout > 0 && headersTimeout < Infinity) this.#headersTimer = setTimeout(this.#onHeadersTimeout, headersTimeout);
  }

  readonly #onAbort = (): void => this.#abort(this.#signal!.reason);

  readonly #onHeadersTimeout = (): void => this.#abort(new errors.HeadersTimeoutError());

  #abort(reason: unknown): void {
    if (this.#reason !== undefined || this.#ended) return;
    this.#reason = reason;
    clearTimeout(this.#headersTimer);
    if (this.#body) return void this.#body.destroy(reason as Error);
    this.#controller?.abort(reason as Error);
    this.#reject(reason);
  }

  #release(): void {
    clearTimeout(this.#headersTimer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#reason !== undefined) controller.abort(this.#reason as Error);
    else this.#controller = controller;
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
    if (this.#body) this.#body.destroy(err);
    else this.#reject(err);
  }
}
