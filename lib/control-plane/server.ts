import { once } from 'node:events';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveSettings } from '../config/options.ts';
import { configError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { LogLevel, Logger } from '../log.ts';
import { addClientRoutes } from './client-routes.ts';
import { ClientRegistry } from './clients.ts';
import { Refusal, sendJson, sendRefusal } from './http.ts';
import { ControlPlaneMetrics } from './metrics.ts';
import { openStore } from './open-store.ts';
import { addPolicyRoutes } from './policy-routes.ts';
import { registerAggregatedMetrics } from './aggregated-metrics.ts';
import { ReportAggregator } from './report-aggregator.ts';
import { addReportRoutes } from './report-routes.ts';
import { validateWithClientRules } from './revision.ts';
import type { DocumentValidator } from './revision.ts';
import { Router } from './router.ts';
import type { RevisionStore } from './store.ts';
import { WatchHub } from './watch-hub.ts';

export interface ControlPlaneOptions {
  /**
   * The policy file (YAML or JSON) that is the store; with an etcd `storeUrl`, the document that
   * seeds an empty store (a store that holds a policy is never overwritten). Required unless
   * `storeUrl` or `store` is given.
   */
  policyFile?: string;
  /** `file:<path>`, or `etcd://host:2379[,host:2379…]/prefix` for replicas sharing one etcd. */
  storeUrl?: string;
  /** Seconds this replica's client records outlive it in etcd (its lease TTL; default 10). */
  clientLeaseTtl?: number;
  /** A store of your own (implements RevisionStore); wins over policyFile and storeUrl. */
  store?: RevisionStore;
  /** Port to listen on (default 0: any free port; cp.url says which). */
  port?: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Token for PUT and rollback (default MESHFETCH_ADMIN_TOKEN); without one, writes are refused. Never logged. */
  adminToken?: string;
  /** Revisions kept for rollback (default 10). */
  historyLimit?: number;
  /** Milliseconds between heartbeats on each watch stream (default 15000). */
  heartbeatInterval?: number;
  /** Largest accepted request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Watch streams held at once (default 50,000); past it a new watch gets 503 with Retry-After. */
  maxWatchers?: number;
  logLevel?: LogLevel;
  logger?: Logger;
  /**
   * How documents are validated (default: the client's own compilePolicy). Override only to serve
   * clients of another version, e.g. to accept a key this version does not know.
   */
  validate?: DocumentValidator;
  /**
   * Serve HTTPS with this certificate and key (PEM). With `ca`, every request, policy reads
   * included, must come with a client certificate that chains to it (a mesh client's certificate).
   */
  tls?: { cert: string; key: string; ca?: string };
  /** Milliseconds after which an instance that stopped reporting figures is forgotten (default 30000: three missed reports). */
  reportTtl?: number;
  /** Milliseconds between dashboard updates (default 2000). */
  dashboardInterval?: number;
  /** Report streams (one per reporting mesh) held open at once (default 10,000); past it a new one gets 503 with Retry-After. */
  maxReportStreams?: number;
  /** Where MESHFETCH_* variables are read from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface ControlPlane {
  /** e.g. "http://127.0.0.1:7878" */
  readonly url: string;
  readonly port: number;
  /** The revision in force. */
  revision(): string;
  /** Ends every watch stream, stops listening and releases the store. */
  close(): Promise<void>;
}

/**
 * How long an idle connection is kept open (Node's default is 5 s): longer than the default 10 s
 * MESHFETCH_REPORT_INTERVAL, so that a reporting mesh sends each report on the connection it already
 * has (its agent follows the Keep-Alive hint). A new connection per report costs the control plane
 * about 200 µs of CPU more on plain TCP (bench/reports.ts), and a handshake with TLS.
 */
const KEEP_ALIVE_MS = 30_000;

/** Starts the control plane: policy reads, watch streams, publishes, rollbacks, client reports, metrics. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const settings = resolveSettings({ adminToken: options.adminToken, logLevel: options.logLevel }, options.env ?? process.env);
  const logger = options.logger ?? createLogger(settings.logLevel);
  const metrics = new ControlPlaneMetrics();
  const validate = options.validate ?? validateWithClientRules;
  const store = options.store ?? (await openStore(options, logger, validate, () => metrics.rejects.inc({ reason: 'file-edit' })));
  const hub = new WatchHub(store.current(), metrics, options.heartbeatInterval ?? 15_000);
  const clients = new ClientRegistry(10_000, store.clients);
  metrics.inForce(store.current().revision);
  const unwatch = store.watch((revision) => {
    hub.publish(revision);
    metrics.publishes.inc({ source: revision.source });
    metrics.inForce(revision.revision);
  });

  const router = new Router();
  addPolicyRoutes(router, { store, hub, clients, adminToken: settings.adminToken, maxBodyBytes: options.maxBodyBytes ?? 1 << 20, maxWatchers: options.maxWatchers ?? 50_000, validate });
  addClientRoutes(router, clients, metrics, logger);
  const aggregator = new ReportAggregator({ ttl: options.reportTtl });
  registerAggregatedMetrics(metrics.registry, aggregator);
  const reports = addReportRoutes(router, { aggregator, clients, revision: () => store.current().revision, logger, dashboardInterval: options.dashboardInterval, maxReportStreams: options.maxReportStreams });
  router.add('GET', '/healthz', (_req, res) => {
    const healthy = store.healthy();
    sendJson(res, healthy ? 200 : 503, { status: healthy ? 'ok' : 'degraded', revision: store.current().revision, watchers: hub.size });
  });
  router.add('GET', '/metrics', async (_req, res) => {
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await router.dispatch(req, res);
    } catch (err) {
      if (err instanceof Refusal) {
        metrics.rejects.inc({ reason: err.reason });
        logger.info('request refused', { method: req.method, path: req.url?.slice(0, 200), status: err.status, reason: err.reason });
        if (!res.headersSent) sendRefusal(res, err);
        return;
      }
      logger.error('request failed', { method: req.method, path: req.url?.slice(0, 200), error: String(err) });
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: { status: 500, reason: 'internal', message: 'internal error; see the control plane log' } });
    }
  };
  // No requestTimeout: a mesh's report stream is one request that stays open for up to five minutes
  // (REPORT_STREAM_MAX_AGE_MS). Bodies are timed where they are read instead (a deadline for a
  // document, a silence limit for a stream).
  const timeouts = { requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: KEEP_ALIVE_MS };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Answered before its body was read (a route that takes none): close rather than read a body sent slowly.
    res.once('finish', () => {
      if (!req.complete) req.socket.destroySoon();
    });
    void handle(req, res);
  };
  const { tls } = options;
  const server = tls
    ? createHttpsServer({ ...timeouts, cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.ca !== undefined, rejectUnauthorized: tls.ca !== undefined }, onRequest)
    : createServer(timeouts, onRequest);
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (err) {
    hub.close();
    reports.close();
    await store.close();
    throw configError(`control plane cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  logger.info('control plane listening', { url, revision: store.current().revision, clientCertificates: tls?.ca !== undefined });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    revision: () => store.current().revision,
    close() {
      closing ??= (async () => {
        unwatch();
        hub.close();
        reports.close();
        server.close();
        server.closeAllConnections();
        await once(server, 'close');
        await store.close();
      })();
      return closing;
    },
  };
}
