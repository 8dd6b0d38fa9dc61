/**
 * The OpenTelemetry SDK registered the way an application registers it (async-hooks context, W3C
 * propagation, every span sampled into a BatchSpanProcessor with the SDK's defaults, as NodeSDK sets
 * it up: 512-span batches, a 2,048-span queue; a MeterProvider aggregating every metric), with an
 * exporter that drops what it is handed: the SDK's cost without a network's. Spans that ended and
 * spans exported are both counted, so that a run shows none was dropped by a full queue.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, ExportResultCode, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';

/** Takes every span the batch processor hands it and drops it: the SDK's cost without a network exporter's. */
export class DiscardingExporter implements SpanExporter {
  exported = 0;
  /** Spans that ended, counted by a processor in front of the batch processor: ended − exported were dropped. */
  ended = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

/** Counts ended spans, so that a run can say none was dropped by a full queue (dropping is cheaper than exporting). */
function counting(exporter: DiscardingExporter): SpanProcessor {
  return {
    onStart: () => undefined,
    onEnd: () => void exporter.ended++,
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
}

class IdleReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export function registerSdk(): { exporter: DiscardingExporter; reader: IdleReader; shutdown(): Promise<void> } {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  const exporter = new DiscardingExporter();
  const tracerProvider = new TracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [counting(exporter), new BatchSpanProcessor({ exporter })],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const reader = new IdleReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    exporter,
    reader,
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
