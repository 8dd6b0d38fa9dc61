import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { AlwaysOnSampler, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

/** A metric reader that collects when asked, and only then. */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface Otel {
  readonly spans: InMemorySpanExporter;
  /** Every metric collected now, by name (meshfetch's scope only). */
  collect(): Promise<Map<string, MetricData>>;
  /** Every scope's metrics, collected now. */
  collectScopes(): Promise<ScopeMetrics[]>;
  /** Registered SDK parts shut down and the global API reset, so later tests run without an SDK. */
  uninstall(): Promise<void>;
}

/**
 * The real OpenTelemetry SDK, registered globally the way an application registers it: async-hooks
 * context, W3C tracecontext + baggage, every span sampled into an in-memory exporter, a metric reader.
 */
export function installOtel(): Otel {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  const spans = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
  trace.setGlobalTracerProvider(tracerProvider);
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    async collect() {
      const { resourceMetrics } = await reader.collect();
      const byName = new Map<string, MetricData>();
      for (const scope of resourceMetrics.scopeMetrics) {
        if (scope.scope.name !== 'meshfetch') continue;
        for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
      }
      return byName;
    },
    async collectScopes() {
      return (await reader.collect()).resourceMetrics.scopeMetrics;
    },
    async uninstall() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
      contextManager.disable();
    },
  };
}

export type { ReadableSpan };

/** The finished spans with this name. */
export function spansNamed(otel: Otel, name: string): ReadableSpan[] {
  return otel.spans.getFinishedSpans().filter((span) => span.name === name);
}

/** Data points of a histogram metric. */
export function histogramPoints(metric: MetricData | undefined): DataPoint<Histogram>[] {
  if (!metric) return [];
  return metric.dataPoints as DataPoint<Histogram>[];
}
