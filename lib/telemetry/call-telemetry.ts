import { context, isSpanContextValid, SpanKind, trace } from '@opentelemetry/api';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { Middleware, MeshResponse } from '../pipeline/types.ts';
import { ATTR, isCancellation, knownMethod, spanName } from './attributes.ts';
import { answered, endSpan, failed, whenBodyCloses } from './request-end.ts';
import type { Ending } from './request-end.ts';
import { recordSpanEvents } from './span-events.ts';
import { CALL_SPAN, currentTracer } from './tracer.ts';

const INTERNAL = { kind: SpanKind.INTERNAL } as const;

/**
 * The logical call: one INTERNAL span named `{method} {route}` that parents every attempt's CLIENT
 * span and carries the mesh's events (retries, hedges, budget, breaker, limits) as span events; and
 * one `call` event when the call ends (its body closed, or it failed), which stats and metrics count.
 * With no SDK registered the span is a no-op and no context is entered.
 */
export function callTelemetryLayer(deps: LayerDeps): Middleware {
  const { events } = deps;
  const stopSpanEvents = recordSpanEvents(events);
  deps.shutdown.addEventListener('abort', stopSpanEvents, { once: true });
  return (next) => async (req, ctx) => {
    const started = performance.now();
    const callerSignal = ctx.signal;
    const parent = context.active();
    const span = currentTracer().startSpan(spanName(req.method, ctx.route), INTERNAL, parent);
    if (span.isRecording()) {
      span.setAttribute(ATTR.method, knownMethod(req.method));
      span.setAttribute(ATTR.service, ctx.service);
      if (ctx.route !== undefined) span.setAttribute(ATTR.route, ctx.route);
    }
    const end = (ending: Ending): void => {
      if (span.isRecording()) span.setAttribute(ATTR.attempts, ctx.attempt);
      endSpan(span, ending);
      if (!events.has('call')) return;
      const { status, errorType, outcome } = ending;
      const duration = performance.now() - started;
      events.emit('call', { service: ctx.service, route: ctx.route, method: req.method, status, errorType, outcome, duration, attempts: ctx.attempt });
    };
    let res: MeshResponse;
    try {
      res = isSpanContextValid(span.spanContext())
        ? await context.with(trace.setSpan(parent, span).setValue(CALL_SPAN, span), next, undefined, req, ctx)
        : await next(req, ctx);
    } catch (err) {
      end(failed(err, isCancellation(err, callerSignal)));
      throw err;
    }
    whenBodyCloses(res, () => end(answered(res.status)));
    return res;
  };
}
