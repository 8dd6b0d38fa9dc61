import { createRequire } from 'node:module';
import { createContextKey, trace } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The instrumentation scope of every span and metric meshfetch records. */
export const SCOPE = { name: 'meshfetch', version } as const;

/** A ProxyTracer: it follows whatever TracerProvider is registered, even one registered after createMesh(). */
export const tracer = trace.getTracer(SCOPE.name, SCOPE.version);

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
