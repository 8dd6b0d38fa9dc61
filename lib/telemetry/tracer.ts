import { createRequire } from 'node:module';
import { createContextKey, trace } from '@opentelemetry/api';
import type { Span, Tracer, TracerProvider } from '@opentelemetry/api';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The instrumentation scope of every span and metric meshfetch records. */
export const SCOPE = { name: 'meshfetch', version } as const;

let provider: TracerProvider | undefined;
let cached: Tracer | undefined;

/**
 * meshfetch's tracer from the TracerProvider registered now. Before any is registered that is a
 * ProxyTracer, which follows a provider registered later; a provider registered after the API was
 * disabled (trace.disable()) is a new global, so the tracer is fetched again.
 */
export function currentTracer(): Tracer {
  const current = trace.getTracerProvider();
  if (current !== provider || cached === undefined) {
    provider = current;
    cached = current.getTracer(SCOPE.name, SCOPE.version);
  }
  return cached;
}

/** The logical call's span, kept in the context so that mesh events during the call land on it. */
export const CALL_SPAN = createContextKey('meshfetch call span');

/**
 * @opentelemetry/core's suppressTracing() key. createContextKey() is Symbol.for(description), so the
 * same description is the same key, without a run-time dependency on core. Under it, the HTTP
 * instrumentations (instrumentation-http, -undici) create no span of their own for our attempt.
 */
export const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

export function callSpanIn(ctx: { getValue(key: symbol): unknown }): Span | undefined {
  return ctx.getValue(CALL_SPAN) as Span | undefined;
}
