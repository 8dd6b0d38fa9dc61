import { startServer, readBody } from './server.ts';
import type { TestServer } from './server.ts';

/** One span as OTLP/JSON carries it, flattened with its resource's service.name and its scope. */
export interface ReceivedSpan {
  readonly service: string;
  readonly scope: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
}

export interface ReceivedMetric {
  readonly service: string;
  readonly scope: string;
  readonly name: string;
  readonly unit: string | undefined;
  readonly body: Record<string, unknown>;
}

type OtlpAttribute = { key: string; value: Record<string, unknown> };

function attributeMap(attributes: OtlpAttribute[] | undefined): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (const { key, value } of attributes ?? []) {
    const [kind, raw] = Object.entries(value)[0] ?? [];
    map[key] = kind === 'intValue' ? Number(raw) : raw;
  }
  return map;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

/** A local OTLP/HTTP (JSON) receiver: what a collector, Jaeger or any OTLP backend would be sent. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly metrics: ReceivedMetric[] = [];
  readonly paths: string[] = [];
  #server: TestServer | undefined;

  async start(): Promise<string> {
    this.#server = await startServer(async (req, res) => {
      const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
      this.paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      if (req.url === '/v1/traces') this.#traces(body);
      if (req.url === '/v1/metrics') this.#metrics(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    return this.#server.origin;
  }

  #traces(body: Record<string, unknown>): void {
    for (const rs of (body.resourceSpans ?? []) as { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: unknown[] }[]) {
      const service = String(attributeMap(rs.resource?.attributes)['service.name']);
      for (const ss of (rs.scopeSpans ?? []) as { scope?: { name?: string }; spans?: Record<string, unknown>[] }[]) {
        for (const span of ss.spans ?? []) {
          this.spans.push({
            service,
            scope: ss.scope?.name ?? '',
            traceId: String(span.traceId),
            spanId: String(span.spanId),
            parentSpanId: span.parentSpanId ? String(span.parentSpanId) : undefined,
            name: String(span.name),
            kind: Number(span.kind),
            attributes: attributeMap(span.attributes as OtlpAttribute[]),
          });
        }
      }
    }
  }

  #metrics(body: Record<string, unknown>): void {
    for (const rm of (body.resourceMetrics ?? []) as { resource?: { attributes?: OtlpAttribute[] }; scopeMetrics?: unknown[] }[]) {
      const service = String(attributeMap(rm.resource?.attributes)['service.name']);
      for (const sm of (rm.scopeMetrics ?? []) as { scope?: { name?: string }; metrics?: Record<string, unknown>[] }[]) {
        for (const metric of sm.metrics ?? []) {
          this.metrics.push({ service, scope: sm.scope?.name ?? '', name: String(metric.name), unit: metric.unit as string | undefined, body: metric });
        }
      }
    }
  }

  close(): Promise<void> {
    return this.#server?.close() ?? Promise.resolve();
  }
}
