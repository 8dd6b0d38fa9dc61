import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as HttpsAgent, createServer as createHttpsServer } from 'node:https';
import got from 'got';
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { gotTransport } from '../../lib/got.ts';
import { createMesh } from '../../lib/index.ts';
import type { Mesh, TransportFactory } from '../../lib/index.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import type { CertificateAuthority } from '../../lib/tls/issue.ts';
import { undiciTransport } from '../../lib/transport/undici.ts';
import { issueClient, issueServer } from '../helpers/certs.ts';
import type { KeyPair } from '../helpers/certs.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { nextCertificateEvent, serialOf, steadyLoad, TlsDir } from '../helpers/tls-files.ts';
import { TRANSPORTS } from '../helpers/transports.ts';

const PAYMENTS = 'spiffe://meshfetch.local/payments';
const CHECKOUT = 'spiffe://meshfetch.local/checkout';
const DAY = 86_400_000;

interface SeenConnection {
  readonly serial: string;
  readonly socket: TLSSocket;
}

/**
 * Records the client certificate every TLS connection to `server` presented, and lets a test wait
 * for the first connection presenting a given certificate.
 */
class ConnectionLog {
  readonly seen: SeenConnection[] = [];
  readonly #waiters: { serial: string; resolve: () => void }[] = [];

  constructor(server: Server) {
    server.on('secureConnection', (socket: TLSSocket) => {
      const serial = socket.getPeerCertificate().serialNumber;
      this.seen.push({ serial, socket });
      for (const waiter of this.#waiters.filter((w) => w.serial === serial)) waiter.resolve();
    });
  }

  presented(pem: string): Promise<void> {
    const serial = serialOf(pem);
    if (this.seen.some((c) => c.serial === serial)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ serial, resolve }));
  }

  /** Resolves once every connection that presented `pem` is closed. */
  closedAll(pem: string): Promise<unknown> {
    const serial = serialOf(pem);
    return Promise.all(this.seen.filter((c) => c.serial === serial && !c.socket.closed).map((c) => once(c.socket, 'close')));
  }
}

/** Resolves after the server has answered `n` more requests. */
function requestsServed(server: HttpServer, n: number): Promise<void> {
  let left = n;
  return new Promise((resolve) => {
    const onRequest = (): void => {
      if (--left > 0) return;
      server.off('request', onRequest);
      resolve();
    };
    server.on('request', onRequest);
  });
}


describe('certificate rotation', function () {
  this.timeout(30_000); // steady load on a shared 2-core machine; nothing here waits on time
  let ca: CertificateAuthority;
  let paymentsCert: KeyPair;
  let first: KeyPair;
  let files: TlsDir;
  let srv: TestServer;
  let connections: ConnectionLog;
  let mesh: Mesh | undefined;

  before(async function () {
    ca = await createCertificateAuthority('mesh CA');
    paymentsCert = await issueServer(ca, { spiffeId: PAYMENTS });
  });

  beforeEach(async function () {
    first = await issueClient(ca, CHECKOUT);
    files = new TlsDir(first, ca.cert);
    const server = createHttpsServer({ cert: paymentsCert.cert, key: paymentsCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true });
    connections = new ConnectionLog(server);
    srv = await startServer((_req, res) => void res.end('ok'), server);
  });

  afterEach(async function () {
    await mesh?.close();
    mesh = undefined;
    await srv.close();
    files.remove();
  });

  function createClientMesh(transport: TransportFactory): Mesh {
    return createMesh({
      service: 'checkout',
      logLevel: 'silent',
      env: {},
      transport,
      ...files.options,
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [srv.origin], identity: PAYMENTS, retry: null } } },
    });
  }

  function load(m: Mesh): ReturnType<typeof steadyLoad> {
    const client = m.client('payments');
    return steadyLoad(async () => {
      const res = await client.fetch('/');
      const body = await res.text();
      if (res.status !== 200 || body !== 'ok') throw new Error(`unexpected answer ${res.status} ${body}`);
    });
  }

  for (const [transportName, transport] of TRANSPORTS) {
    it(`under steady load (${transportName}): zero failed calls, new connections present the new certificate, old ones are drained`, async function () {
      mesh = createClientMesh(transport());
      const traffic = load(mesh);
      await requestsServed(srv.server, 50);
      expect(connections.seen.every((c) => c.serial === serialOf(first.cert))).to.equal(true);

      const second = await issueClient(ca, CHECKOUT);
      const rotated = nextCertificateEvent(mesh, 'rotated');
      files.write(second);
      const event = await rotated;
      expect(event).to.include({ subject: CHECKOUT, reason: undefined });
      expect(event.notAfter).to.equal(new X509Certificate(second.cert).validToDate.getTime());
      await connections.presented(second.cert);
      await connections.closedAll(first.cert);
      await requestsServed(srv.server, 50);
      const { ok, failures } = await traffic.stop();

      expect(failures, String(failures[0])).to.deep.equal([]);
      expect(ok).to.be.greaterThan(100);
      const firstNew = connections.seen.findIndex((c) => c.serial === serialOf(second.cert));
      expect(connections.seen.slice(firstNew).every((c) => c.serial === serialOf(second.cert))).to.equal(true);
      expect(mesh.certificate()?.notAfter).to.equal(event.notAfter);
    });
  }

  it("got with the team's own https agent: the agent is left alone, and new connections present the new certificate", async function () {
    const agent = new HttpsAgent({ keepAlive: true });
    try {
      mesh = createClientMesh(gotTransport({ got: got.extend({ agent: { https: agent } }) }));
      expect((await mesh.client('payments').fetch('/')).status).to.equal(200);
      const second = await issueClient(ca, CHECKOUT);
      const rotated = nextCertificateEvent(mesh, 'rotated');
      files.write(second);
      await rotated;
      expect((await mesh.client('payments').fetch('/')).status).to.equal(200);
      await connections.presented(second.cert);
    } finally {
      agent.destroy();
    }
  });

  it('follows a kubelet-style secret volume: files are symlinks through ..data, which is swapped atomically', async function () {
    const volume = mkdtempSync(join(tmpdir(), 'meshfetch-kubelet-'));
    const publish = (version: string, pair: KeyPair): void => {
      mkdirSync(join(volume, version));
      writeFileSync(join(volume, version, 'tls.crt'), pair.cert);
      writeFileSync(join(volume, version, 'tls.key'), pair.key);
      writeFileSync(join(volume, version, 'ca.crt'), ca.cert);
      symlinkSync(version, join(volume, '..data_tmp'));
      renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    };
    try {
      publish('..v1', first);
      for (const name of ['tls.crt', 'tls.key', 'ca.crt']) symlinkSync(join('..data', name), join(volume, name));
      mesh = createMesh({
        service: 'checkout', logLevel: 'silent', env: {},
        tls: { certFile: join(volume, 'tls.crt'), keyFile: join(volume, 'tls.key'), caFile: join(volume, 'ca.crt') },
        policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [srv.origin], identity: PAYMENTS } } },
      });
      expect((await mesh.client('payments').fetch('/')).status).to.equal(200);
      const second = await issueClient(ca, CHECKOUT);
      const rotated = nextCertificateEvent(mesh, 'rotated');
      publish('..v2', second);
      await rotated;
      expect((await mesh.client('payments').fetch('/')).status).to.equal(200);
      await connections.presented(second.cert);
    } finally {
      rmSync(volume, { recursive: true, force: true });
    }
  });

  it('a broken file written mid-run is refused, the current certificate stays in use, and a later good write is picked up', async function () {
    mesh = createClientMesh(undiciTransport());
    const traffic = load(mesh);
    await requestsServed(srv.server, 20);
    const next = await issueClient(ca, CHECKOUT);
    const other = await issueClient(ca, CHECKOUT);
    const expired = await issueClient(ca, CHECKOUT, { notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) });
    const early = await issueClient(ca, CHECKOUT, { notBefore: new Date(Date.now() + DAY), days: 2 });
    const stranger = await issueClient(await createCertificateAuthority('a stranger CA'), CHECKOUT);

    const refusals: [() => void, RegExp][] = [
      [() => files.overwrite(files.cert, next.cert.slice(0, next.cert.length / 2)), /incomplete or non-certificate PEM block/],
      [() => files.overwrite(files.cert, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'), /cannot be parsed/],
      [() => files.write({ cert: next.cert, key: other.key }), /key\.pem: the private key does not match the certificate/],
      [() => files.write(expired), /has expired \(notAfter/],
      [() => files.write(early), /not valid yet \(notBefore/],
      [() => files.write(stranger), /not issued by any CA of the CA bundle/],
      [() => files.overwrite(files.key, 'garbage'), /key\.pem: not a PEM file/],
    ];
    for (const [write, reason] of refusals) {
      const refused = nextCertificateEvent(mesh, 'refused');
      write();
      const event = await refused;
      expect(event.reason).to.match(reason);
      expect(event.subject).to.equal(CHECKOUT);
      expect(mesh.certificate()?.notAfter).to.equal(new X509Certificate(first.cert).validToDate.getTime());
      await requestsServed(srv.server, 10);
    }
    const rotated = nextCertificateEvent(mesh, 'rotated');
    files.write(next);
    await rotated;
    await connections.presented(next.cert);
    await requestsServed(srv.server, 20);
    const { failures } = await traffic.stop();
    expect(failures, String(failures[0])).to.deep.equal([]);
    const presented = new Set(connections.seen.map((c) => c.serial));
    expect([...presented].sort()).to.deep.equal([serialOf(first.cert), serialOf(next.cert)].sort());
  });
});

describe('CA trust rotation, in the documented order, between mesh.createServer() and a client mesh', function () {
  this.timeout(30_000);
  const meshes: Mesh[] = [];
  const dirs: TlsDir[] = [];
  let server: Server | undefined;

  afterEach(async function () {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
    if (server) {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      server = undefined;
    }
    for (const dir of dirs.splice(0)) dir.remove();
  });

  it('1. both bundles hold old+new CA, 2. certificates reissued by the new CA, 3. old CA removed: zero failed calls', async function () {
    const [oldCa, newCa] = await Promise.all([createCertificateAuthority('old mesh CA'), createCertificateAuthority('new mesh CA')]);
    const serverFiles = new TlsDir(await issueServer(oldCa, { spiffeId: PAYMENTS, usage: 'both' }), oldCa.cert);
    const clientFiles = new TlsDir(await issueClient(oldCa, CHECKOUT), oldCa.cert);
    dirs.push(serverFiles, clientFiles);
    const policy = (origin: string) => ({
      apiVersion: 'meshfetch/v1' as const,
      services: { payments: { endpoints: [origin], identity: PAYMENTS, allow: ['checkout'], retry: null } },
    });

    const paymentsMesh = createMesh({ service: 'payments', logLevel: 'silent', env: {}, ...serverFiles.options, policy: policy('https://127.0.0.1:1') });
    meshes.push(paymentsMesh);
    server = paymentsMesh.createServer((req, res) => void res.end(`hello ${req.caller.service}`));
    const connections = new ConnectionLog(server);
    const srv = await startServer(() => {}, server);
    const checkoutMesh = createMesh({ service: 'checkout', logLevel: 'silent', env: {}, ...clientFiles.options, policy: policy(srv.origin) });
    meshes.push(checkoutMesh);
    const client = checkoutMesh.client('payments');
    const traffic = steadyLoad(async () => {
      const res = await client.fetch('/');
      const body = await res.text();
      if (body !== 'hello checkout') throw new Error(`unexpected answer ${res.status} ${body}`);
    });
    await requestsServed(server, 20);

    /** Writes files of one side and waits until that side's mesh has rotated. */
    const rotate = async (m: Mesh, dir: TlsDir, pair: KeyPair | undefined, ca?: string): Promise<void> => {
      const rotated = nextCertificateEvent(m, 'rotated');
      dir.write(pair, ca);
      await rotated;
      await requestsServed(server!, 20);
    };
    const bothCas = oldCa.cert + newCa.cert;

    // 1. Trust first: every bundle holds both CAs before any certificate from the new CA exists.
    await rotate(checkoutMesh, clientFiles, undefined, bothCas);
    await rotate(paymentsMesh, serverFiles, undefined, bothCas);

    // Removing the old CA now would be the classic outage; a client refuses a bundle that does not
    // hold the issuer of its own certificate, and keeps the one in force.
    const refused = nextCertificateEvent(checkoutMesh, 'refused');
    clientFiles.write(undefined, newCa.cert);
    expect((await refused).reason).to.contain('not issued by any CA of the CA bundle');
    clientFiles.write(undefined, bothCas); // back to the bundle in force: nothing to rotate

    // 2. Certificates reissued by the new CA, server and client.
    await rotate(paymentsMesh, serverFiles, await issueServer(newCa, { spiffeId: PAYMENTS, usage: 'both' }));
    const newClient = await issueClient(newCa, CHECKOUT);
    await rotate(checkoutMesh, clientFiles, newClient);
    await connections.presented(newClient.cert);

    // 3. Only once every certificate comes from the new CA, the old CA leaves the bundles.
    await rotate(checkoutMesh, clientFiles, undefined, newCa.cert);
    await rotate(paymentsMesh, serverFiles, undefined, newCa.cert);

    const { ok, failures } = await traffic.stop();
    expect(failures, String(failures[0])).to.deep.equal([]);
    expect(ok).to.be.greaterThan(100);
  });
});
