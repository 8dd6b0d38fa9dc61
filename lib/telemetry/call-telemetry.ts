import { context, SpanKind, trace } from '@opentelemetry/api';
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Middleware, MeshResponse } from '../pipeline/types.ts';
import { ATTR, isCancellation, knownMethod, spanName } from './attributes.ts';
import { bodyEnded, endSpan, failed, whenBodyCloses } from './request-end.ts';
import type { Ending } from './request-end.ts';
import { recordSpanEvents } from './span-events.ts';
import { activeTracer } from './tracer.ts';

/**
 * Attributes are set after the start: the SDK validates start attributes twice (for the sampler,
 * then for the span), and the HTTP conventions' sampling attributes belong to the CLIENT spans.
 */
function startCallSpan(tracer: Tracer, parent: Context, method: string, ctx: CallContext): Span {
  const span = tracer.startSpan(spanName(method, ctx.route), { kind: SpanKind.INTERNAL }, parent);
  if (span.isRecording()) {
    span.setAttribute(ATTR.method, knownMethod(method));
    span.setAttribute(ATTR.service, ctx.service);
    if (ctx.route !== undefined) span.setAttribute(ATTR.route, ctx.route);
  }
  return span;
}

/**
 * The logical call: one INTERNAL span named `{method} {route}` that parents every attempt's CLIENT
 * span and carries the mesh's events (retries, hedges, budget, breaker, limits) as span events; and
 * one `call` event when the call ends (its body closed, or it failed), which stats and metrics count.
 * With no TracerProvider registered there is no span and no context is entered.
 */
export function callTelemetryLayer(deps: LayerDeps): Middleware {
  const { events } = deps;
  const stopSpanEvents = recordSpanEvents(events);
  deps.shutdown.addEventListener('abort', stopSpanEvents, { once: true });
  return (next) => async (req, ctx) => {
    const started = performance.now();
    const callerSignal = ctx.signal;
    const tracer = activeTracer();
    let span: Span | undefined;
    const end = (ending: Ending): void => {
      if (span) {
        if (ctx.attempt > 1 && span.isRecording()) span.setAttribute(ATTR.attempts, ctx.attempt);
        endSpan(span, ending);
      }
      if (!events.has('call')) return;
      const { status, errorType, outcome } = ending;
      const duration = performance.now() - started;
      events.emit('call', { service: ctx.service, route: ctx.route, method: req.method, status, errorType, outcome, duration, attempts: ctx.attempt });
    };
    let res: MeshResponse;
    try {
      if (tracer) {
        const parent = context.active();
        span = startCallSpan(tracer, parent, req.method, ctx);
        res = await context.with(trace.setSpan(parent, span), next, undefined, req, ctx);
      } else {
        res = await next(req, ctx);
      }
    } catch (err) {
      end(failed(err, isCancellation(err, callerSignal)));
      throw err;
    }
    whenBodyCloses(res, () => end(bodyEnded(res, callerSignal)));
    return res;
  };
}
