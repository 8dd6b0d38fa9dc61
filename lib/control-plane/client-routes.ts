import { CLIENT_IDENTITY } from './clients.ts';
import type { ClientRegistry, ClientReport } from './clients.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import { readBody } from './body.ts';
import { Refusal, sendJson } from './http.ts';
import type { Router } from './router.ts';
import type { Logger } from '../log.ts';
import { isPlainObject } from '../policy/schema.ts';

const MAX_ERROR_LENGTH = 2_000;

function field(body: Record<string, unknown>, name: string, valid: (value: unknown) => boolean, expected: string): unknown {
  const value = body[name];
  if (!valid(value)) throw new Refusal(400, 'invalid-report', `${name}: expected ${expected}`);
  return value;
}

/** A client's report of the revision it applied or refused (NACK), checked field by field. */
function parseReport(text: string): ClientReport {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 'malformed', 'request body: not valid JSON');
  }
  if (!isPlainObject(body)) throw new Refusal(400, 'invalid-report', '(document): expected an object');
  const identity = (value: unknown) => typeof value === 'string' && CLIENT_IDENTITY.test(value);
  const revision = field(body, 'revision', (v) => v === undefined || v === null || (typeof v === 'string' && v.length <= 64), 'a revision string or null');
  const error = field(body, 'error', (v) => v === undefined || v === null || typeof v === 'string', 'a string');
  return {
    service: field(body, 'service', identity, 'a service name') as string,
    instance: field(body, 'instance', identity, 'an instance id (letters, digits, ".", "_", ":", "-")') as string,
    revision: (revision ?? undefined) as string | undefined,
    status: field(body, 'status', (v) => v === 'applied' || v === 'rejected', '"applied" or "rejected"') as ClientReport['status'],
    error: typeof error === 'string' ? error.slice(0, MAX_ERROR_LENGTH) : undefined,
  };
}

export function addClientRoutes(router: Router, clients: ClientRegistry, metrics: ControlPlaneMetrics, logger: Logger): void {
  router.add('GET', '/v1/clients', async (_req, res) => sendJson(res, 200, { clients: await clients.listAll() }));

  router.add('POST', '/v1/clients/report', async (req, res) => {
    const report = parseReport((await readBody(req, 16_384)).toString('utf8'));
    clients.report(report);
    if (report.status === 'rejected') {
      metrics.clientRejections.inc();
      logger.warn('a client refused a revision', { service: report.service, instance: report.instance, revision: report.revision, error: report.error });
    }
    res.writeHead(204).end();
  });
}
