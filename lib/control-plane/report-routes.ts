import type { ServerResponse } from 'node:http';
import type { ClientRegistry } from './clients.ts';
import { DASHBOARD_PAGE } from './dashboard-page.ts';
import { totalRequests } from './held-report.ts';
import { MAX_REPORT_BYTES, REPORT_STREAM_IDLE_MS, REPORT_STREAM_TYPE } from '../telemetry/report.ts';
import { readBody, readLines } from './body.ts';
import { Refusal, sendJson } from './http.ts';
import type { ReportAggregator, StatsQuery } from './report-aggregator.ts';
import { parseNameFilter, parseStatsReport, parseWindow } from './report-parse.ts';
import type { Router } from './router.ts';
import type { Logger } from '../log.ts';

/** The dashboard's streams, each refreshed from one timer, are few: operators, not clients. */
const MAX_DASHBOARD_STREAMS = 100;
/** A dashboard that has not taken this much of what was written to it is cut off. */
const MAX_BACKLOG_BYTES = 4 << 20;

export interface ReportRoutesDeps {
  readonly aggregator: ReportAggregator;
  readonly clients: ClientRegistry;
  readonly revision: () => string;
  readonly logger: Logger;
  /** Milliseconds between dashboard updates (default 2000). */
  readonly dashboardInterval?: number | undefined;
  /** Report streams held open at once (default 10,000); past it a new one gets 503 with Retry-After. */
  readonly maxReportStreams?: number | undefined;
}

/** `application/x-ndjson`, parameters and case aside: a stream of reports, one per line. */
const isReportStream = (type: string | undefined): boolean => type !== undefined && type.split(';', 1)[0]!.trim().toLowerCase() === REPORT_STREAM_TYPE;

function statsQuery(query: URLSearchParams, fallbackWindow: number): StatsQuery {
  return {
    window: parseWindow(query.get('window'), fallbackWindow),
    from: parseNameFilter(query, 'from'),
    to: parseNameFilter(query, 'to'),
    route: parseNameFilter(query, 'route'),
  };
}

/** POST /v1/reports (clients' figures in: one report, or a stream of them), GET /v1/stats (merged out), and the read-only dashboard: GET / and its stream. */
export function addReportRoutes(router: Router, deps: ReportRoutesDeps): { close(): void } {
  const { aggregator } = deps;
  const ingest = (text: string): void => {
    const report = parseStatsReport(text);
    aggregator.ingest(report);
    deps.logger.debug('stats report', { service: report.service, instance: report.instance, edges: report.to.length, requests: totalRequests(report) });
  };
  const maxStreams = deps.maxReportStreams ?? 10_000;
  let openStreams = 0;
  router.add('POST', '/v1/reports', async (req, res) => {
    if (!isReportStream(req.headers['content-type'])) {
      ingest((await readBody(req, MAX_REPORT_BYTES)).toString('utf8'));
      return void res.writeHead(204).end();
    }
    if (openStreams >= maxStreams) {
      throw new Refusal(503, 'too-many-report-streams', `reports: this control plane holds at most ${maxStreams} open report streams, and that many are open; retry later`, { headers: { 'retry-after': '10' } });
    }
    openStreams++;
    try {
      await readLines(req, { limit: MAX_REPORT_BYTES, idleMs: REPORT_STREAM_IDLE_MS, noun: 'report' }, ingest);
    } finally {
      openStreams--;
    }
    // A stream the mesh cut (it closed, or gave up on a stream it thought stuck) has no one to answer.
    if (req.complete) res.writeHead(204).end();
  });

  router.add('GET', '/v1/stats', (_req, res, query) => sendJson(res, 200, aggregator.view(statsQuery(query, aggregator.ttl))));

  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  const frame = (): string => {
    const state = { stats: aggregator.view({ window: aggregator.ttl }), revision: deps.revision(), clients: deps.clients.list() };
    return `event: state\ndata: ${JSON.stringify(state)}\n\n`;
  };
  const pushAll = (): void => {
    const text = frame();
    for (const res of streams) {
      if (res.writableLength > MAX_BACKLOG_BYTES) res.destroy();
      else res.write(text);
    }
  };

  router.add('GET', '/v1/dashboard/stream', (req, res) => {
    if (streams.size >= MAX_DASHBOARD_STREAMS) return sendJson(res, 503, { error: { status: 503, reason: 'too-many-streams', message: `dashboard: at most ${MAX_DASHBOARD_STREAMS} streams at once` } });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(frame());
    streams.add(res);
    if (!timer) {
      timer = setInterval(pushAll, deps.dashboardInterval ?? 2_000);
      timer.unref();
    }
    req.once('close', () => {
      streams.delete(res);
      if (streams.size === 0) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  });

  router.add('GET', '/', (_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // Everything the page runs is inline in it; nothing else may load or run.
      'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
      'x-content-type-options': 'nosniff',
    });
    res.end(DASHBOARD_PAGE);
  });

  return {
    close() {
      clearInterval(timer);
      for (const res of streams) res.end();
    },
  };
}
