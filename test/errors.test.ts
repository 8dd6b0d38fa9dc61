import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createMesh, defineService, ErrorCode, HttpStatusError, MeshError } from '../lib/index.ts';
import type { Mesh, ServiceDocument } from '../lib/index.ts';
import { generateCerts } from './helpers/certs.ts';
import { deadOrigin } from './helpers/fault-server.ts';
import { section, tableRows } from './helpers/markdown.ts';
import { rejection } from './helpers/rejection.ts';
import { sendJson, startServer } from './helpers/server.ts';
import type { TestHandler, TestServer } from './helpers/server.ts';

const errorsDoc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** The rows of the first markdown table under `heading`, as arrays of cell texts. */
function tableAfter(heading: string): string[][] {
  return tableRows(section(errorsDoc, heading));
}

/** "`service`, `route`, `cause` (per try)" → ['service', 'route']: fields with a note are conditional. */
function alwaysSetFields(cell: string): string[] {
  return cell
    .split(/[,;]\s*/)
    .filter((part) => !part.includes('('))
    .flatMap((part) => [...part.matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]!));
}

const codesTable = tableAfter('## Codes').map(([code, , , fields]) => ({ code: code!.replace(/`/g, ''), fields: fields! }));

describe('docs/errors.md against the code', () => {
  const servers: TestServer[] = [];
  const meshes: Mesh[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(meshes.splice(0).map((m) => m.close()));
  });

  async function serve(handler: TestHandler, server?: Parameters<typeof startServer>[1]): Promise<string> {
    const started = await startServer(handler, server);
    servers.push(started);
    return started.origin;
  }

  /** Calls to /a match the policy route "a", so that an error can carry its route. */
  function meshFor(service: ServiceDocument): Mesh {
    const routes = [{ name: 'a', match: { path: '/a' } }];
    const mesh = createMesh({ env: {}, policy: { apiVersion: 'meshfetch/v1', services: { payments: { retry: null, routes, ...service } } } });
    meshes.push(mesh);
    return mesh;
  }

  const never: TestHandler = () => {};

  /** Each code raised at call time, by one or more real calls. */
  const scenarios: Record<string, Record<string, () => Promise<unknown>>> = {
    MESHFETCH_TIMEOUT: {
      deadline: async () => meshFor({ endpoints: [await serve(never)], timeout: '50ms' }).client('payments').get('/a'),
      'per try': async () => meshFor({ endpoints: [await serve(never)], perTryTimeout: '50ms' }).client('payments').get('/a'),
      'body (fetch)': async () => {
        const origin = await serve((_req, res) => void res.writeHead(200, { 'content-length': '10' }).write('x'));
        const res = await meshFor({ endpoints: [origin], bodyTimeout: '50ms' }).client('payments').fetch('/a');
        return res.text();
      },
      'body (JSON)': async () => {
        const origin = await serve((_req, res) => void res.writeHead(200, { 'content-length': '10' }).write('{'));
        return meshFor({ endpoints: [origin], bodyTimeout: '50ms' }).client('payments').get('/a');
      },
    },
    MESHFETCH_CONNECT: { refused: async () => meshFor({ endpoints: [await deadOrigin()] }).client('payments').get('/a') },
    MESHFETCH_RESET: {
      'socket destroyed': async () => meshFor({ endpoints: [await serve((req) => void req.socket.destroy())] }).client('payments').get('/a'),
    },
    MESHFETCH_TLS: {
      'untrusted CA': async () => {
        const certs = await generateCerts();
        const origin = await serve((_req, res) => void res.end('{}'), createHttpsServer({ cert: certs.server.cert, key: certs.server.key }));
        return meshFor({ endpoints: [origin] }).client('payments').get('/a');
      },
      'tls.mode strict, plain http': async () => meshFor({ endpoints: [await serve(never)], tls: { mode: 'strict' } }).client('payments').get('/a'),
    },
    MESHFETCH_HTTP_STATUS: {
      '404': async () => meshFor({ endpoints: [await serve((_req, res) => sendJson(res, 404, {}))] }).client('payments').get('/a'),
    },
    MESHFETCH_CIRCUIT_OPEN: {
      'after a failure opened it': async () => {
        const origin = await serve((_req, res) => sendJson(res, 503, {}));
        const client = meshFor({ endpoints: [origin], circuitBreaker: { volumeThreshold: 1 } }).client('payments');
        await rejection(client.get('/a')); // the 503 opens the circuit
        return client.get('/a');
      },
    },
    MESHFETCH_RATE_LIMITED: {
      'empty bucket': async () => {
        const client = meshFor({ endpoints: [await serve((_req, res) => sendJson(res, 200, {}))], rateLimit: { rps: 0.001, burst: 1 } }).client('payments');
        await client.get('/a');
        return client.get('/a');
      },
    },
    MESHFETCH_CONCURRENCY_LIMIT: {
      'full bulkhead': async () => {
        const client = meshFor({ endpoints: [await serve(never)], concurrency: { max: 1, queue: 0 } }).client('payments');
        void client.get('/a').catch(() => {}); // holds the one slot until the mesh closes
        return client.get('/a');
      },
    },
    MESHFETCH_CONFIG: { 'no endpoints': async () => meshFor({}).client('payments').get('/a') },
    MESHFETCH_BODY: {
      'not JSON': async () => meshFor({ endpoints: [await serve((_req, res) => void res.end('<html>'))] }).client('payments').get('/a'),
      'request body': async () => meshFor({ endpoints: [await serve(never)] }).client('payments').post('/a', { body: Symbol('x') }),
    },
    MESHFETCH_BODY_TOO_LARGE: {
      'over jsonBodyLimit': async () => {
        const origin = await serve((_req, res) => sendJson(res, 200, { padding: 'x'.repeat(100) }));
        return meshFor({ endpoints: [origin], jsonBodyLimit: 16 }).client('payments').get('/a');
      },
    },
    MESHFETCH_DECODE: {
      'response decoder': async () => {
        const origin = await serve((_req, res) => sendJson(res, 200, {}));
        const Payments = defineService({ routes: { getCharge: { method: 'GET', path: '/c', response: () => { throw new Error('no'); } } } });
        return meshFor({ endpoints: [origin] }).client('payments', Payments).getCharge();
      },
    },
    MESHFETCH_CLOSED: {
      'after close()': async () => {
        const mesh = meshFor({ endpoints: [await serve(never)] });
        await mesh.close();
        return mesh.client('payments').get('/a');
      },
      'aborted after the grace period': async () => {
        const mesh = meshFor({ endpoints: [await serve(never)] });
        const call = rejection(mesh.client('payments').get('/a'));
        await mesh.close({ grace: 20 });
        throw await call;
      },
    },
    MESHFETCH_REDIRECT: {
      "redirect: 'error'": async () => {
        const origin = await serve((_req, res) => void res.writeHead(302, { location: '/b' }).end());
        return meshFor({ endpoints: [origin] }).client('payments').get('/a', { redirect: 'error' });
      },
      'a redirect loop': async () => {
        const origin = await serve((_req, res) => void res.writeHead(302, { location: '/a' }).end());
        return meshFor({ endpoints: [origin] }).client('payments').get('/a');
      },
    },
  };

  it('lists every error code exactly once, and nothing else', () => {
    expect(codesTable.map((row) => row.code)).to.have.members(Object.values(ErrorCode));
    expect(codesTable).to.have.length(Object.values(ErrorCode).length);
  });

  it('names a scenario here for each code the table says is raised, and only for those', () => {
    const raised = codesTable.filter((row) => row.fields !== '–').map((row) => row.code);
    expect(Object.keys(scenarios)).to.have.members(raised);
  });

  for (const { code, fields } of codesTable.filter((row) => row.fields !== '–')) {
    for (const [name, scenario] of Object.entries(scenarios[code] ?? {})) {
      it(`${code} (${name}) carries ${alwaysSetFields(fields).join(', ')}`, async () => {
        const err = await rejection(scenario());
        expect(err).to.be.instanceOf(MeshError);
        expect((err as MeshError).code).to.equal(code);
        for (const field of alwaysSetFields(fields)) {
          expect((err as unknown as Record<string, unknown>)[field], `${code} (${name}).${field}: ${(err as Error).message}`).to.not.equal(undefined);
        }
      });
    }
  }

  it('every field of the Fields table is a property of the errors it is on', async () => {
    const origin = await serve((_req, res) => sendJson(res, 503, {}));
    const httpError = (await rejection(meshFor({ endpoints: [origin] }).client('payments').get('/a'))) as HttpStatusError;
    expect(httpError).to.be.instanceOf(HttpStatusError);
    const withCause = (await rejection(scenarios.MESHFETCH_CONNECT!.refused!())) as MeshError;
    const rows = tableAfter('## Fields').map(([field, on]) => ({ field: field!.replace(/`/g, ''), on: on! }));
    expect(rows.map((row) => row.field)).to.include.members(['code', 'service', 'route', 'attempts', 'gaveUp', 'cause', 'status', 'body']);
    for (const { field, on } of rows) {
      const err = on === 'when there is one' ? withCause : httpError;
      expect(field in err, `${field} (on ${on})`).to.equal(true);
    }
  });
});
