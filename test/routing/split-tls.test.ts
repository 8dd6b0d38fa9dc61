import { createServer as createHttpsServer } from 'node:https';
import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, PolicyDocument, ServiceDocument } from '../../lib/index.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import type { CertificateAuthority } from '../../lib/tls/issue.ts';
import { issueClient, issueServer } from '../helpers/certs.ts';
import { Harness } from '../helpers/fault-server.ts';
import { rejection } from '../helpers/rejection.ts';
import { startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { TlsDir } from '../helpers/tls-files.ts';

const PAYMENTS = 'spiffe://meshfetch.local/payments';
const CANARY = 'spiffe://meshfetch.local/payments-canary';

describe('traffic split with mTLS: the backend\'s identity and tls.mode are used', function () {
  this.timeout(20_000);
  let ca: CertificateAuthority;
  let files: TlsDir;
  const servers: TestServer[] = [];
  const meshes: Mesh[] = [];
  const h = new Harness();

  before(async () => {
    ca = await createCertificateAuthority('mesh CA');
    files = new TlsDir(await issueClient(ca, 'spiffe://meshfetch.local/checkout'), ca.cert);
  });
  after(() => files.remove());
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await h.close();
  });

  async function httpsServer(spiffeId: string): Promise<TestServer> {
    const pair = await issueServer(ca, { spiffeId });
    const server = createHttpsServer({ cert: pair.cert, key: pair.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true });
    const started = await startServer((_req, res) => void res.end('ok'), server);
    servers.push(started);
    return started;
  }

  function splitMesh(stable: string, canary: string, canaryService: Omit<ServiceDocument, 'endpoints'>): Mesh {
    const policy: PolicyDocument = {
      apiVersion: 'meshfetch/v1',
      services: {
        payments: { endpoints: [stable], identity: PAYMENTS, retry: null, split: [{ service: 'payments-canary', weight: 1 }] },
        'payments-canary': { endpoints: [canary], ...canaryService },
      },
    };
    const mesh = createMesh({ service: 'checkout', logLevel: 'silent', env: {}, policy, ...files.options });
    meshes.push(mesh);
    return mesh;
  }

  it('checks the canary\'s certificate against the canary\'s identity, not the logical service\'s', async () => {
    const [stable, canary] = await Promise.all([httpsServer(PAYMENTS), httpsServer(CANARY)]);
    const res = await splitMesh(stable.origin, canary.origin, { identity: CANARY }).client('payments').fetch('/');
    expect([res.status, await res.text()]).to.deep.equal([200, 'ok']);
    expect([stable.requests.length, canary.requests.length]).to.deep.equal([0, 1]);
    // A canary presenting the logical service's identity is refused: its own identity is what counts.
    const impostor = await httpsServer(PAYMENTS);
    const err = await rejection(splitMesh(stable.origin, impostor.origin, { identity: CANARY }).client('payments').fetch('/'));
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).code).to.equal(ErrorCode.Tls);
    expect((err as MeshError).message).to.contain(`expected ${CANARY}`);
    expect(impostor.requests.length).to.equal(0);
  });

  it('a backend with tls.mode strict refuses its plain-http endpoint even when the logical service is permissive', async () => {
    const stable = await httpsServer(PAYMENTS);
    const plain = await h.server();
    const err = await rejection(splitMesh(stable.origin, plain.origin, { tls: { mode: 'strict' } }).client('payments').fetch('/'));
    expect((err as MeshError).code).to.equal(ErrorCode.Tls);
    expect((err as MeshError).message).to.contain('tls.mode is strict for payments-canary');
    expect(plain.requests.length).to.equal(0);
  });
});
