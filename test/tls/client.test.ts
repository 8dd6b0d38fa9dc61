import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, MeshOptions, PolicyDocument, ServiceDocument } from '../../lib/index.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import type { CertificateAuthority } from '../../lib/tls/issue.ts';
import { issueClient, issueServer } from '../helpers/certs.ts';
import type { KeyPair } from '../helpers/certs.ts';
import { rejection } from '../helpers/rejection.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { TlsDir } from '../helpers/tls-files.ts';
import { TRANSPORTS } from '../helpers/transports.ts';

const PAYMENTS = 'spiffe://meshfetch.local/payments';
const CHECKOUT = 'spiffe://meshfetch.local/checkout';
const DAY = 86_400_000;
const run = promisify(execFile);
const SYSTEM_ROOTS = new URL('./fixtures/system-roots.ts', import.meta.url).pathname;


for (const [transportName, transport] of TRANSPORTS) {
  describe(`mTLS client side (${transportName} transport)`, function () {
    let ca: CertificateAuthority;
    let otherCa: CertificateAuthority;
    let paymentsCert: KeyPair;
    let files: TlsDir;
    const servers: TestServer[] = [];
    const meshes: Mesh[] = [];

    before(async function () {
      [ca, otherCa] = await Promise.all([createCertificateAuthority('mesh CA'), createCertificateAuthority('some other CA')]);
      paymentsCert = await issueServer(ca, { spiffeId: PAYMENTS });
      files = new TlsDir(await issueClient(ca, CHECKOUT), ca.cert);
    });

    after(() => files.remove());

    afterEach(async function () {
      await Promise.all(meshes.splice(0).map((m) => m.close()));
      await Promise.all(servers.splice(0).map((s) => s.close()));
    });

    /** An https server that requires a client certificate from the mesh CA and answers with its SANs. */
    async function paymentsServer(pair: KeyPair = paymentsCert): Promise<TestServer> {
      const server = createHttpsServer({ cert: pair.cert, key: pair.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true });
      const started = await startServer((req, res) => {
        res.end((req.socket as TLSSocket).getPeerCertificate().subjectaltname ?? 'no client certificate');
      }, server);
      servers.push(started);
      return started;
    }

    function mesh(origin: string, payments: Omit<ServiceDocument, 'endpoints'> = { identity: PAYMENTS }, options: MeshOptions = files.options): Mesh {
      const policy: PolicyDocument = { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [origin], ...payments } } };
      const created = createMesh({ service: 'checkout', logLevel: 'silent', env: {}, transport: transport(), policy, ...options });
      meshes.push(created);
      return created;
    }

    async function tlsFailure(m: Mesh): Promise<MeshError> {
      const err = await rejection(m.client('payments').fetch('/'));
      expect(err, String(err)).to.be.instanceOf(MeshError);
      expect((err as MeshError).code, String(err)).to.equal(ErrorCode.Tls);
      return err as MeshError;
    }

    it('good chain: presents the client certificate, trusts the mesh CA and accepts the expected SPIFFE id', async function () {
      const srv = await paymentsServer();
      const res = await mesh(srv.origin).client('payments').fetch('/');
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal(`URI:${CHECKOUT}`);
    });

    it('keeps one mTLS connection alive across sequential calls to a service with an identity', async function () {
      // node opens a new connection per request when each request brings its own checkServerIdentity.
      const srv = await paymentsServer();
      let handshakes = 0;
      srv.server.on('secureConnection', () => handshakes++);
      const client = mesh(srv.origin).client('payments');
      for (let i = 0; i < 10; i++) expect(await (await client.fetch('/')).text()).to.equal(`URI:${CHECKOUT}`);
      // undici's unbounded pool may open a second connection when a call is dispatched just before the
      // first connection is marked free; what matters is that calls do not each pay a handshake.
      expect(handshakes).to.be.below(5);
    });

    it('wrong CA: refuses a server certificate the mesh CA did not sign, sending nothing', async function () {
      const srv = await paymentsServer(await issueServer(otherCa, { spiffeId: PAYMENTS }));
      const err = await tlsFailure(mesh(srv.origin));
      expect(err.message).to.match(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i);
      expect(err.retryable).to.equal(false);
      expect(srv.requests).to.have.length(0);
    });

    it('wrong SAN: refuses on the first call, naming the expected and the presented identity', async function () {
      const srv = await paymentsServer(await issueServer(ca, { spiffeId: 'spiffe://meshfetch.local/ledger' }));
      const err = await tlsFailure(mesh(srv.origin));
      expect(err.message).to.contain(`expected ${PAYMENTS}`);
      expect(err.message).to.contain('presented URI:spiffe://meshfetch.local/ledger, DNS:localhost');
      expect(err.service).to.equal('payments');
      expect(err.attempts ?? 1).to.equal(1);
      expect(srv.requests).to.have.length(0);
    });

    it('matches a DNS identity against the DNS SANs, and refuses a DNS name the certificate does not carry', async function () {
      const srv = await paymentsServer(await issueServer(ca, { dns: ['payments.mesh.internal'] }));
      expect((await mesh(srv.origin, { identity: 'payments.mesh.internal' }).client('payments').fetch('/')).status).to.equal(200);
      const err = await tlsFailure(mesh(srv.origin, { identity: 'ledger.mesh.internal' }));
      expect(err.message).to.contain('expected ledger.mesh.internal, presented DNS:payments.mesh.internal');
    });

    it('expired: refuses a server certificate past its notAfter', async function () {
      const expired = await issueServer(ca, { spiffeId: PAYMENTS, notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) });
      const srv = await paymentsServer(expired);
      expect((await tlsFailure(mesh(srv.origin))).message).to.contain('CERT_HAS_EXPIRED');
      expect(srv.requests).to.have.length(0);
    });

    it('tls.mode strict: refuses plain http before a connection is opened', async function () {
      let connections = 0;
      const srv = await startServer((_req, res) => void res.end('plain'), createHttpServer().on('connection', () => connections++));
      servers.push(srv);
      const err = await tlsFailure(mesh(srv.origin, { tls: { mode: 'strict' } }));
      expect(err.message).to.equal(`tls.mode is strict for payments: refusing plain http to ${srv.origin} (nothing was sent)`);
      expect(connections).to.equal(0);
      // permissive (the default) lets the same call through.
      expect(await (await mesh(srv.origin).client('payments').fetch('/')).text()).to.equal('plain');
    });

    it('tls.mode disabled: the mesh material is not used (platform trust, no client certificate)', async function () {
      const srv = await paymentsServer();
      const err = await tlsFailure(mesh(srv.origin, { identity: PAYMENTS, tls: { mode: 'disabled' } }));
      expect(err.message).to.not.contain('expected');
      expect(srv.requests).to.have.length(0);
    });

    it('an https origin that is not a mesh service gets the platform defaults, not the mesh CA', async function () {
      const srv = await paymentsServer();
      const m = mesh('https://127.0.0.1:1');
      const err = await rejection(m.client('elsewhere').fetch(`${srv.origin}/`));
      expect((err as MeshError).code, String(err)).to.equal(ErrorCode.Tls);
      expect(srv.requests).to.have.length(0);
    });
  });
}

describe('mTLS client side: the mesh CA replaces the system roots', function () {
  it('refuses a server certificate from a CA the platform trusts (NODE_EXTRA_CA_CERTS) but the mesh bundle lacks', async function () {
    const [meshCa, platformCa] = await Promise.all([createCertificateAuthority('mesh CA'), createCertificateAuthority('a CA the platform trusts')]);
    const files = new TlsDir(await issueClient(meshCa, CHECKOUT), meshCa.cert);
    const extraCa = join(files.dir, 'platform-ca.pem');
    writeFileSync(extraCa, platformCa.cert);
    const pair = await issueServer(platformCa, { spiffeId: PAYMENTS });
    const srv = await startServer((_req, res) => void res.end('ok'), createHttpsServer({ cert: pair.cert, key: pair.key }));
    try {
      const child = await run(process.execPath, [SYSTEM_ROOTS, srv.origin, files.cert, files.key, files.ca], { env: { ...process.env, NODE_EXTRA_CA_CERTS: extraCa } });
      expect(JSON.parse(child.stdout)).to.deep.equal({ platform: 200, mesh: ErrorCode.Tls });
    } finally {
      await srv.close();
      files.remove();
    }
  });
});
