// Preloaded after meshfetch/register (`node --import meshfetch/register --import ./tracing.ts`): the
// OpenTelemetry HTTP instrumentation gives each service a SERVER span that continues the caller's
// trace, so one checkout is one trace across storefront, orders and payments.
import { createRequire } from 'node:module';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

registerInstrumentations({ instrumentations: [new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url?.startsWith('/_') ?? false })] });
// Loaded through require, so that the instrumentation patches the node:http every importer shares.
createRequire(import.meta.url)('node:http');
