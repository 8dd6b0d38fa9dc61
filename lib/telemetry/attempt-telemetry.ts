import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, MeshRequest, MeshResponse, Middleware } from '../pipeline/types.ts';
import { ATTR, isCancellation, knownMethod, redactedUrl, serverAddress, spanName } from './attributes.ts';
import { bodyEnded, endSpan, failed, whenBodyCloses } from './request-end.ts';
import type { Ending } from './request-end.ts';
import { activeTracer, SUPPRESS_TRACING } from './tracer.ts';

/**
 * The attributes the HTTP client conventions want a sampler to see, given at the span's start; the
 * SDK validates start attributes twice (before and after sampling), so the rest are set after it.
 */
function samplingAttributes(req: MeshRequest, method: string): Attributes {
  const { address, port } = serverAddress(req.origin);
  return { [ATTR.method]: method, [ATTR.serverAddress]: address, [ATTR.serverPort]: port, [ATTR.urlFull]: redactedUrl(req.origin, req.path) };
}

function startAttemptSpan(tracer: Tracer, parent: Context, req: MeshRequest, ctx: CallContext): Span {
  const method = knownMethod(req.method);
  const span = tracer.startSpan(spanName(req.method, ctx.route), { kind: SpanKind.CLIENT, attributes: samplingAttributes(req, method) }, parent);
  if (!span.isRecording()) return span;
  span.setAttribute(ATTR.service, ctx.service);
  if (ctx.backend !== undefined) span.setAttribute(ATTR.backend, ctx.backend);
  if (ctx.route !== undefined) span.setAttribute(ATTR.route, ctx.route);
  if (ctx.attempt > 1) span.setAttribute(ATTR.resendCount, ctx.attempt - 1);
  if (method === '_OTHER') span.setAttribute(ATTR.methodOriginal, req.method);
  return span;
}

/**
 * One attempt on the wire: a CLIENT span per attempt (hedged copies included), following the HTTP
 * client semantic conventions; the registered propagator injects its context into the attempt's
 * headers, so the server's span is its child. The transport runs with tracing suppressed, so an
 * application that also runs instrumentation-http or -undici gets one CLIENT span per attempt, not two.
 * Emits one `attempt` event when the attempt ends.
 */
export function attemptTelemetryLayer(deps: LayerDeps): Middleware {
  const { events } = deps;
  return (next) => async (req, ctx) => {
    const started = performance.now();
    // Read now: the retry layer moves ctx on to the next attempt before this one's body closes.
    const { attempt, backend = ctx.service } = ctx;
    const tracer = activeTracer();
    let span: Span | undefined;
    const end = (ending: Ending): void => {
      if (span) endSpan(span, ending);
      if (!events.has('attempt')) return;
      const { status, errorType, outcome } = ending;
      const duration = performance.now() - started;
      events.emit('attempt', { service: ctx.service, route: ctx.route, method: req.method, status, errorType, outcome, duration, origin: req.origin, attempt, backend });
    };
    let res: MeshResponse;
    try {
      if (tracer) {
        const parent = context.active();
        span = startAttemptSpan(tracer, parent, req, ctx);
        const attemptContext = trace.setSpan(parent, span);
        const headers = { ...req.headers };
        propagation.inject(attemptContext, headers);
        res = await context.with(attemptContext.setValue(SUPPRESS_TRACING, true), next, undefined, { ...req, headers }, ctx);
      } else {
        res = await next(req, ctx);
      }
    } catch (err) {
      end(failed(err, isCancellation(err, ctx.signal)));
      throw err;
    }
    whenBodyCloses(res, () => end(bodyEnded(res, ctx.signal)));
    return res;
  };
}
