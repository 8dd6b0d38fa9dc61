// Where the demo's traces go when no OTLP endpoint is set: a local OTLP/HTTP (JSON) receiver that
// appends every export to a JSON-lines file, one OTLP ExportTraceServiceRequest per line.
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Export {
  resourceSpans?: { scopeSpans?: { spans?: { traceId: string }[] }[] }[];
}

export interface TraceSink {
  /** The traces endpoint, for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. */
  readonly url: string;
  readonly spans: () => number;
  readonly traces: () => number;
  close(): Promise<void>;
}

export async function startTraceSink(file: string): Promise<TraceSink> {
  let spans = 0;
  const traceIds = new Set<string>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      try {
        const parsed = JSON.parse(body) as Export;
        for (const resource of parsed.resourceSpans ?? [])
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) {
              spans++;
              traceIds.add(span.traceId);
            }
        appendFileSync(file, `${body.replaceAll('\n', '')}\n`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans: () => spans,
    traces: () => traceIds.size,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
