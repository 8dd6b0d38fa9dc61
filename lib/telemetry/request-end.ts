import { SpanStatusCode } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import type { Outcome } from '../events.ts';
import type { MeshResponse } from '../pipeline/types.ts';
import { ATTR, errorType, isCancellation, statusOutcome } from './attributes.ts';

export interface Ending {
  readonly status: number | undefined;
  readonly errorType: string | undefined;
  readonly outcome: Outcome;
}

/** One frozen Ending per status code seen, so that the common path allocates none (statuses are bounded: 100–999). */
const ANSWERED = new Map<number, Ending>();

/** How a request that answered ended: 4xx and 5xx carry their status as error.type (HTTP client conventions). */
function answered(status: number): Ending {
  let ending = ANSWERED.get(status);
  if (ending === undefined) {
    ending = Object.freeze({ status, errorType: status >= 400 ? String(status) : undefined, outcome: statusOutcome(status) });
    if (status >= 100 && status <= 999) ANSWERED.set(status, ending);
  }
  return ending;
}

export function failed(err: unknown, cancelled: boolean, status?: number): Ending {
  return { status, errorType: errorType(err), outcome: cancelled ? 'cancelled' : 'failure' };
}

/**
 * How a request that answered ended once its body closed: as its status says, unless the body failed
 * on the way (a reset, the deadline, the caller's abort), which the caller saw as an error.
 */
export function bodyEnded(res: MeshResponse, signal: AbortSignal | undefined): Ending {
  const err: unknown = res.body.errored;
  return err === null || err === undefined ? answered(res.status) : failed(err, isCancellation(err, signal), res.status);
}

/** Sets the outcome's attributes and status on `span` and ends it. A cancellation is not an error of the span. */
export function endSpan(span: Span, ending: Ending): void {
  if (span.isRecording()) {
    if (ending.status !== undefined) span.setAttribute(ATTR.status, ending.status);
    if (ending.errorType !== undefined) {
      span.setAttribute(ATTR.errorType, ending.errorType);
      if (ending.outcome !== 'cancelled') span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}

/**
 * Runs `fn` once the response body has closed (read to its end, or destroyed). A stream emits
 * 'close' once, so a plain listener is enough (once() would wrap `fn` in one more closure per call).
 */
export function whenBodyCloses(res: MeshResponse, fn: () => void): void {
  if (res.body.destroyed) fn();
  else res.body.on('close', fn);
}
