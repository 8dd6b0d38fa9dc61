import { createRequire } from 'node:module';
import { createContextKey, ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { Tracer, TracerProvider } from '@opentelemetry/api';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The instrumentation scope of every span and metric meshfetch records. */
export const SCOPE = { name: 'meshfetch', version } as const;

/**
 * @opentelemetry/core's suppressTracing() key. createContextKey() is Symbol.for(description), so the
 * same description is the same key, without a run-time dependency on core. Under it, the HTTP
 * instrumentations (instrumentation-http, -undici) create no span of their own for our attempt.
 */
export const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/** What the API hands out while no TracerProvider is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

let provider: TracerProvider | undefined;
let cached: Tracer | undefined;

/**
 * meshfetch's tracer from the TracerProvider registered now, or undefined while none is (then a call
 * pays for no span and enters no context). Looked up per call, so a provider registered after
 * createMesh() is used from the next call on.
 */
export function activeTracer(): Tracer | undefined {
  const global = trace.getTracerProvider();
  const current = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
  if (current === NOOP_PROVIDER) return undefined;
  if (current !== provider || cached === undefined) {
    provider = current;
    cached = current.getTracer(SCOPE.name, SCOPE.version);
  }
  return cached;
}
