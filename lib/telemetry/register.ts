/**
 * `node --import meshfetch/register app.js`: starts the OpenTelemetry Node SDK before the application,
 * configured by the standard OTEL_* variables alone (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_TRACES_SAMPLER, …). Every call made through
 * meshfetch is then traced and measured. The SDK is flushed and shut down when the process ends.
 */
import { ErrorCode, MeshError } from '../errors.ts';

const SDK_PACKAGE = '@opentelemetry/sdk-node';

function isMissing(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return code === 'ERR_MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(SDK_PACKAGE);
}

async function loadSdk(): Promise<typeof import('@opentelemetry/sdk-node')> {
  try {
    return await import(SDK_PACKAGE);
  } catch (err) {
    if (!isMissing(err)) throw err;
    throw new MeshError(
      ErrorCode.Config,
      `meshfetch/register starts the OpenTelemetry SDK, but ${SDK_PACKAGE} is not installed: run \`npm install ${SDK_PACKAGE}\`, or start your own SDK and drop --import meshfetch/register`,
      { cause: err },
    );
  }
}

const { NodeSDK } = await loadSdk();
/** The SDK this module started, for an application that wants to flush or shut it down itself. */
export const sdk = new NodeSDK();
sdk.start();

let stopping: Promise<void> | undefined;
const shutdown = (): Promise<void> => (stopping ??= sdk.shutdown().catch((err: unknown) => {
  process.emitWarning(`meshfetch/register: the OpenTelemetry SDK did not shut down cleanly: ${String(err)}`, 'MeshfetchTelemetryWarning');
}));

// A process that ends by itself exports what is still batched; so does one stopped by a signal,
// which then ends the way it would have without us.
process.once('beforeExit', () => void shutdown());
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void shutdown().finally(() => process.kill(process.pid, signal)));
}
