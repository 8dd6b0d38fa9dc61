import { expect } from 'chai';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { createMesh, ErrorCode, MeshError, startControlPlane } from '../../lib/index.ts';
import type { Mesh, MeshOptions, PolicyDocument } from '../../lib/index.ts';
import { cacheFile } from '../../lib/control-plane-client/cache.ts';
import { ADMIN_TOKEN, namedBackend, newerSchemaValidator, nextPolicyEvent, paymentsPolicy, revisionInForce, startTestControlPlane } from '../helpers/control-plane.ts';
import { freePort } from '../helpers/free-port.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { generateCerts } from '../helpers/certs.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const FAST = { fallbackAfter: 2_000, reconnectMin: 10, reconnectBase: 20, reconnectMax: 100 };

describe('mesh with a control plane (MESHFETCH_CONTROL_PLANE)', () => {
  let dir: string;
  const meshes: Mesh[] = [];
  const closers: (() => Promise<void>)[] = [];
  const mesh = (controlPlane: string, options: MeshOptions = {}): Mesh => {
    const created = createMesh({ controlPlane, logLevel: 'silent', env: {}, controlPlaneTiming: FAST, ...options });
    meshes.push(created);
    return created;
  };
  const servers = async (...names: string[]): Promise<TestServer[]> => {
    const started = await Promise.all(names.map(namedBackend));
    closers.push(...started.map((s) => () => s.close()));
    return started;
  };
  const controlPlane = async (initial: unknown, options = {}): Promise<TestControlPlane> => {
    const t = await startTestControlPlane(initial, { logLevel: 'silent', ...options });
    closers.push(() => t.close());
    return t;
  };

  const writePolicy = (document: unknown): string => {
    const file = join(dir, 'local-policy.json');
    writeFileSync(file, JSON.stringify(document));
    return file;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshfetch-client-'));
  });
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
    for (const close of closers.splice(0).reverse()) await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('createMesh() stays synchronous; ready() resolves with the control plane revision in force', async () => {
    const [a] = await servers('a');
    const t = await controlPlane(paymentsPolicy(a!.origin));
    const m = mesh(t.url);
    expect(m.policyRevision).to.equal(undefined);
    await m.ready();
    expect(m.policyRevision).to.equal(t.cp.revision());
    expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'a' });
  });

  it('propagates each revision to every mesh, and the next call uses it', async () => {
    const [a, b] = await servers('a', 'b');
    const t = await controlPlane(paymentsPolicy(a!.origin));
    const all = [mesh(t.url), mesh(t.url), mesh(t.url)];
    await Promise.all(all.map((m) => m.ready()));
    const put = await t.publish(paymentsPolicy(b!.origin));
    await Promise.all(all.map((m) => revisionInForce(m, put.body.revision!)));
    for (const m of all) {
      expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'b' });
      expect(await (await m.fetch('http://payments/x')).json()).to.deep.equal({ name: 'b' });
    }
  });

  it('a call made before any policy is in force waits for one, on every entry point (mesh.fetch too)', async () => {
    const [a] = await servers('a');
    let watcher: ServerResponse | undefined;
    const gate = await startServer((req, res) => {
      if (req.url !== '/v1/policy/watch') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-meshfetch-heartbeat': '60000' });
      res.write(':\n\n');
      watcher = res;
      gate.server.emit('watching');
    });
    closers.push(() => gate.close());
    const m = mesh(gate.origin, { controlPlaneTiming: { ...FAST, fallbackAfter: 60_000 } });
    await once(gate.server, 'watching');
    const viaFetch = m.fetch('http://payments/x');
    const viaClient = m.client('payments').get('/x');
    const document = { ...paymentsPolicy(a!.origin), revision: 'r1' };
    watcher!.write(`event: policy\nid: r1\ndata: ${JSON.stringify(document)}\n\n`);
    expect(await (await viaFetch).json()).to.deep.equal({ name: 'a' });
    expect(await viaClient).to.deep.equal({ name: 'a' });
    expect(m.policyRevision).to.equal('r1');
  });

  it('a waiting call gives up within its own timeout, with MESHFETCH_CONFIG', async () => {
    const gate = await startServer((_req, res) => void res.writeHead(200, { 'content-type': 'text/event-stream' }).write(':\n\n'));
    closers.push(() => gate.close());
    const m = mesh(gate.origin, { controlPlaneTiming: { ...FAST, fallbackAfter: 60_000 } });
    const err = await m.fetch('http://payments/x', { timeout: 50 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(MeshError).with.property('code', ErrorCode.Config);
    expect((err as Error).message).to.equal('no policy in force after 50ms; cannot call payments');
  });

  it('NACK: a revision the client cannot apply is refused and reported; the last-known-good stays in force', async () => {
    const [a, b] = await servers('a', 'b');
    // A control plane one version ahead accepts a key this client does not know.
    const t = await controlPlane(paymentsPolicy(a!.origin), { validate: newerSchemaValidator });
    const m = mesh(t.url, { service: 'checkout' });
    await m.ready();
    const good = m.policyRevision!;
    const refused = nextPolicyEvent(m, (e) => !e.applied);
    const reported = t.logger.next('a client refused a revision');
    const put = await t.publish(paymentsPolicy(b!.origin, { futureKnob: true }));
    expect(put.status).to.equal(200);
    const event = await refused;
    expect(event).to.include({ revision: put.body.revision, source: 'control-plane', applied: false });
    expect(event.error).to.contain('services.payments.futureKnob: unknown key');
    expect(m.policyRevision).to.equal(good);
    expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'a' });
    expect(await reported).to.include({ service: 'checkout', instance: m.instance, revision: put.body.revision });
    const { clients } = (await (await fetch(`${t.url}/v1/clients`)).json()) as { clients: Record<string, unknown>[] };
    expect(clients).to.have.length(1);
    expect(clients[0]).to.include({ service: 'checkout', instance: m.instance, revision: good, rejectedRevision: put.body.revision, watching: 1 });
    expect(clients[0]!.lastError).to.contain('futureKnob');
  });

  it('control plane down at start: the cached last-known-good goes in force', async () => {
    const [a, b] = await servers('a', 'b');
    const port = await freePort();
    const t = await controlPlane(paymentsPolicy(a!.origin), { port });
    const first = mesh(t.url, { cacheDir: dir });
    await first.ready();
    const put = await t.publish(paymentsPolicy(b!.origin));
    await revisionInForce(first, put.body.revision!);
    await first.close(); // waits for the cache write
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    await t.cp.close();

    const second = mesh(t.url, { cacheDir: dir, policyFile: writePolicy(paymentsPolicy(a!.origin)) });
    const used = nextPolicyEvent(second);
    await second.ready();
    expect(await used).to.include({ source: 'cache', revision: put.body.revision, applied: true });
    expect(await second.client('payments').get('/x')).to.deep.equal({ name: 'b' });
  });

  it('control plane down at start, nothing cached: MESHFETCH_POLICY, else the defaults; a corrupt cache is passed over', async () => {
    const [a] = await servers('a');
    const url = `http://127.0.0.1:${await freePort()}`;
    const cacheDir = join(dir, 'cache');
    const withFile = mesh(url, { cacheDir, env: { MESHFETCH_POLICY: writePolicy(paymentsPolicy(a!.origin)) } });
    const fileEvent = nextPolicyEvent(withFile);
    expect(await withFile.client('payments').get('/x')).to.deep.equal({ name: 'a' });
    expect(await fileEvent).to.include({ source: 'file', applied: true });
    expect(existsSync(cacheDir)).to.equal(false);

    mkdirSync(cacheDir);
    writeFileSync(cacheFile(cacheDir, [new URL(url)]), '{"revision": "r9", "document": {"apiVersion": "meshfetch/v0"}}');
    const bare = mesh(url, { cacheDir });
    const defaultsEvent = nextPolicyEvent(bare);
    await bare.ready();
    expect(await defaultsEvent).to.include({ source: 'defaults', applied: true });
  });

  it('keeps reconnecting: a control plane that comes up later takes over from the fallback', async () => {
    const [a, b] = await servers('a', 'b');
    const port = await freePort();
    const m = mesh(`http://127.0.0.1:${port}`, { policy: paymentsPolicy(a!.origin) as unknown as PolicyDocument });
    await m.ready();
    expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'a' });
    const t = await controlPlane(paymentsPolicy(b!.origin), { port });
    await revisionInForce(m, t.cp.revision());
    expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'b' });
  });

  it('detects a silent stream (no heartbeats) and reconnects, keeping its policy', async () => {
    const [a] = await servers('a');
    const document = JSON.stringify({ ...paymentsPolicy(a!.origin), revision: 'r1' });
    let connections = 0;
    const silent = await startServer((_req, res) => {
      connections++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-meshfetch-heartbeat': '20' });
      res.write(`event: policy\nid: r1\ndata: ${document}\n\n`);
      silent.server.emit('watch', connections);
      // …and then nothing: no heartbeat, no end. A half-open connection looks like this.
    });
    closers.push(() => silent.close());
    const m = mesh(silent.origin, { controlPlaneTiming: { ...FAST, silenceTimeout: 100 } });
    await m.ready();
    while (connections < 3) await once(silent.server, 'watch');
    expect(m.policyRevision).to.equal('r1');
    expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'a' });
  });

  it('never logs the admin token', async () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((line: string) => lines.push(line) > 0) as typeof process.stderr.write;
    try {
      const m = createMesh({ env: { MESHFETCH_CONTROL_PLANE: `http://127.0.0.1:${await freePort()}`, MESHFETCH_ADMIN_TOKEN: ADMIN_TOKEN, MESHFETCH_LOG_LEVEL: 'debug' } });
      meshes.push(m);
      await m.ready();
    } finally {
      process.stderr.write = write;
    }
    expect(lines.join('')).to.contain('control plane not reached').and.not.contain(ADMIN_TOKEN);
  });

  it('over TLS with client certificates required: a mesh with its certificate gets the policy; a caller without one is refused', async () => {
    const [a] = await servers('a');
    const certs = await generateCerts();
    const t = await controlPlane(paymentsPolicy(a!.origin), { tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } });
    expect(t.url).to.match(/^https:\/\/127\.0\.0\.1:/);
    const pem = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const m = mesh(t.url, { tls: { certFile: pem('client.crt', certs.client.cert), keyFile: pem('client.key', certs.client.key), caFile: pem('ca.crt', certs.ca) } });
    await m.ready();
    expect(m.policyRevision).to.equal(t.cp.revision());
    const anonymous = httpsGet(`${t.url}/v1/policy`, { ca: certs.ca });
    const [failure] = (await Promise.race([once(anonymous, 'error'), once(anonymous, 'response').then(() => [new Error('answered')])])) as [Error];
    expect((failure as NodeJS.ErrnoException).code ?? failure.message).to.match(/ECONNRESET|ERR_SSL|alert|certificate/i);
    anonymous.destroy();
  });

  it('startControlPlane binds 127.0.0.1 by default', async () => {
    const cp = await startControlPlane({ policyFile: writePolicy(paymentsPolicy('http://127.0.0.1:9')), env: {}, logLevel: 'silent' });
    closers.push(() => cp.close());
    expect(cp.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

