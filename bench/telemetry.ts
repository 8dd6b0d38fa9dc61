/**
 * What telemetry costs per call: the default stack against the same stack without its two telemetry
 * layers, over the in-memory transport (typed JSON path), interleaved rounds, medians. Two phases in
 * one process: first with no OpenTelemetry SDK registered, then with the real SDK registered the way
 * an application does (async-hooks context, W3C propagation, every span sampled into a
 * BatchSpanProcessor, a MeterProvider aggregating every metric). Also: DDSketch's cost per value.
 *
 *   node bench/telemetry.ts [--quick]      (npm run bench runs it in a child process, last)
 */
import { context, metrics, propagation, SpanKind, trace } from '@opentelemetry/api';
import { DEFAULT_STACK } from '../lib/index.ts';
import { newSketch } from '../lib/telemetry/tally.ts';
import { registerSdk } from './otel-sdk.ts';
import { cpuPerCall, median } from './pipeline.ts';

const WITHOUT_TELEMETRY = DEFAULT_STACK.filter((layer) => layer.name !== 'telemetry' && layer.name !== 'attempt-telemetry');

async function paired(rounds: number, calls: number): Promise<{ off: number; on: number }> {
  const off: number[] = [];
  const on: number[] = [];
  for (let round = 0; round < rounds; round++) {
    off.push(await cpuPerCall(WITHOUT_TELEMETRY, calls));
    on.push(await cpuPerCall(DEFAULT_STACK, calls));
  }
  return { off: median(off), on: median(on) };
}

/**
 * What the layers ask of the SDK per call, done directly in a loop: two spans with the same
 * attributes given the same way (sampling attributes at the start, the rest after), three
 * contexts, two context entries, one inject, two histogram records with the layers' labels. The
 * floor no instrumentation of this shape can go under; the layers' cost above it is meshfetch's own.
 * Yields every 256 calls, as the layered loop does on every call, so that the batch processor
 * exports instead of dropping (a dropped span costs less than an exported one).
 */
async function sdkFloor(calls: number): Promise<number> {
  const tracer = trace.getTracer('floor');
  const meter = metrics.getMeter('floor');
  const attempt = meter.createHistogram('attempt', { unit: 's' });
  const call = meter.createHistogram('call', { unit: 's' });
  const suppress = Symbol.for('OpenTelemetry SDK Context Key SUPPRESS_TRACING');
  const one = (): void => {
    const parent = context.active();
    const callSpan = tracer.startSpan('GET item', { kind: SpanKind.INTERNAL }, parent);
    callSpan.setAttribute('http.request.method', 'GET');
    callSpan.setAttribute('meshfetch.service', 'upstream');
    callSpan.setAttribute('meshfetch.route', 'item');
    context.with(trace.setSpan(parent, callSpan), () => {
      const attributes = { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': 1, 'url.full': 'http://127.0.0.1:1/item' };
      const span = tracer.startSpan('GET item', { kind: SpanKind.CLIENT, attributes }, context.active());
      span.setAttribute('meshfetch.service', 'upstream');
      span.setAttribute('meshfetch.route', 'item');
      const attemptContext = trace.setSpan(context.active(), span);
      const headers: Record<string, string> = {};
      propagation.inject(attemptContext, headers);
      context.with(attemptContext.setValue(suppress, true), () => undefined);
      span.setAttribute('http.response.status_code', 200);
      span.end();
      attempt.record(0.001, {
        'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': 1,
        'meshfetch.caller': 'bench', 'meshfetch.service': 'upstream', 'meshfetch.route': 'item', 'http.response.status_code': 200,
      });
    });
    callSpan.setAttribute('http.response.status_code', 200);
    callSpan.end();
    call.record(0.001, { 'http.request.method': 'GET', 'meshfetch.caller': 'bench', 'meshfetch.service': 'upstream', 'meshfetch.route': 'item', 'http.response.status_code': 200 });
  };
  const loop = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      one();
      if ((i & 255) === 255) await null;
    }
  };
  await loop(5_000);
  const start = process.cpuUsage();
  await loop(calls);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

function sketchCost(values: number): { nsPerValue: number; bytes: number } {
  const sketch = newSketch();
  const latencies = Float64Array.from({ length: 4_096 }, () => 0.2 + Math.random() ** 3 * 500);
  for (let i = 0; i < 100_000; i++) sketch.accept(latencies[i & 4_095]!);
  const start = process.hrtime.bigint();
  for (let i = 0; i < values; i++) sketch.accept(latencies[i & 4_095]!);
  const ns = Number(process.hrtime.bigint() - start) / values;
  return { nsPerValue: ns, bytes: sketch.toProto().length };
}

export async function runTelemetryBench(quick: boolean): Promise<string> {
  const rounds = quick ? 3 : 7;
  const calls = quick ? 10_000 : 30_000;
  const noSdk = await paired(rounds, calls);
  const sdk = registerSdk();
  const withSdk = await paired(rounds, calls);
  const floors: number[] = [];
  for (let round = 0; round < rounds; round++) floors.push(await sdkFloor(calls));
  const floor = median(floors);
  await sdk.shutdown();
  const { exported, ended } = sdk.exporter;
  const sketch = sketchCost(1_000_000);
  const row = (label: string, { off, on }: { off: number; on: number }): string =>
    `  ${label.padEnd(46)} ${off.toFixed(2).padStart(6)} → ${on.toFixed(2).padStart(6)} µs CPU/call   (+${(on - off).toFixed(2)} µs, ${(on / off).toFixed(2)}x)`;
  return [
    `telemetry cost (in-memory transport, typed JSON path, ${calls} calls × ${rounds} rounds, median; without → with the telemetry layers):`,
    row('no OpenTelemetry SDK registered', noSdk),
    row('SDK registered, every span sampled, metrics on', withSdk),
    `  of which the SDK's own work (2 spans, 3 contexts, 2 context entries, 1 inject, 2 histogram records, done directly): ${floor.toFixed(2)} µs; meshfetch's own: ${(withSdk.on - withSdk.off - floor).toFixed(2)} µs`,
    `  criterion: with the SDK, telemetry adds ≤ 10 µs per call: ${withSdk.on - withSdk.off <= 10 ? 'met' : 'NOT met'} (${exported} of ${ended} spans ended were exported${exported === ended ? ', none dropped' : `: ${ended - exported} DROPPED, figures too low`})`,
    `  DDSketch (1 % accuracy, 1,024 bins): ${sketch.nsPerValue.toFixed(0)} ns per value added; ${sketch.bytes} bytes serialised after 1.1 M values`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runTelemetryBench(process.argv.includes('--quick')));
}
