import { once } from 'node:events';
import { createServer as createHttpsServer, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { callerIdentity, createMesh, DEADLINE_HEADER, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, PolicyDocument } from '../../lib/index.ts';
import { currentIncomingCall } from '../../lib/resilience/deadline-context.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import type { CertificateAuthority } from '../../lib/tls/issue.ts';
import { issueClient, issueServer } from '../helpers/certs.ts';
import type { KeyPair } from '../helpers/certs.ts';
import { nextCertificateEvent, serialOf, TlsDir } from '../helpers/tls-files.ts';

const PAYMENTS = 'spiffe://meshfetch.local/payments';
const CHECKOUT = 'spiffe://meshfetch.local/checkout';
const INTRUDER = 'spiffe://meshfetch.local/intruder';

interface Answer {
  status: number;
  body: string;
  serverSerial: string;
}

/** One request on a fresh connection (no agent), presenting `client`, reporting what the server presented. */
function get(port: number, ca: string, client: KeyPair | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ca, cert: client?.cert, key: client?.key, headers }, (res: IncomingMessage) => {
      const serverSerial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve({ status: res.statusCode!, body, serverSerial }));
    });
    req.once('error', reject).end();
  });
}

describe('mesh.createServer() and mesh.serverOptions()', function () {
  let ca: CertificateAuthority;
  let checkout: KeyPair;
  let intruder: KeyPair;
  let files: TlsDir;
  let mesh: Mesh;
  let server: Server | undefined;

  const policy: PolicyDocument = { apiVersion: 'meshfetch/v1', services: { payments: { allow: ['checkout'] } } };

  before(async function () {
    ca = await createCertificateAuthority('mesh CA');
    [checkout, intruder] = await Promise.all([issueClient(ca, CHECKOUT), issueClient(ca, INTRUDER)]);
  });

  beforeEach(async function () {
    files = new TlsDir(await issueServer(ca, { spiffeId: PAYMENTS }), ca.cert);
    mesh = createMesh({ service: 'payments', logLevel: 'silent', env: {}, policy, ...files.options });
  });

  afterEach(async function () {
    if (server) {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      server = undefined;
    }
    await mesh.close();
    files.remove();
  });

  async function listen(s: Server): Promise<number> {
    server = s;
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return (s.address() as AddressInfo).port;
  }

  it('puts the caller identity on the request and continues its deadline', async function () {
    const port = await listen(
      mesh.createServer((req, res) => {
        const incoming = currentIncomingCall();
        res.end(JSON.stringify({ caller: req.caller, deadlineLeft: incoming ? incoming.deadline - Date.now() : null }));
      }),
    );
    const answer = await get(port, ca.cert, checkout, { [DEADLINE_HEADER]: '5000' });
    expect(answer.status).to.equal(200);
    const body = JSON.parse(answer.body) as { caller: unknown; deadlineLeft: number };
    expect(body.caller).to.deep.equal({ identity: CHECKOUT, service: 'checkout' });
    expect(body.deadlineLeft).to.be.within(1, 5000);
  });

  it('answers 403 to a caller not in the allow list, naming its identity, and never runs the handler', async function () {
    let handled = 0;
    const port = await listen(mesh.createServer((_req, res) => void res.end(String(++handled))));
    const answer = await get(port, ca.cert, intruder);
    expect(answer.status).to.equal(403);
    expect(JSON.parse(answer.body)).to.deep.equal({
      error: 'forbidden',
      reason: `${INTRUDER} is not allowed to call payments (services.payments.allow)`,
    });
    expect(handled).to.equal(0);
    // A new policy applies on the next request.
    mesh.setPolicy({ apiVersion: 'meshfetch/v1', services: { payments: { allow: [INTRUDER] } } });
    expect((await get(port, ca.cert, intruder)).status).to.equal(200);
    expect((await get(port, ca.cert, checkout)).status).to.equal(403);
  });

  it('refuses, in the handshake, a client without a certificate or with one from another CA', async function () {
    const port = await listen(mesh.createServer((_req, res) => void res.end('ok')));
    const stranger = await issueClient(await createCertificateAuthority('a stranger CA'), CHECKOUT);
    for (const client of [undefined, stranger]) {
      const err = await get(port, ca.cert, client).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'the handshake should have failed').to.be.instanceOf(Error);
    }
  });

  it('picks up a rotated server certificate for new connections', async function () {
    const port = await listen(mesh.createServer((_req, res) => void res.end('ok')));
    const before = await get(port, ca.cert, checkout);
    const next = await issueServer(ca, { spiffeId: PAYMENTS });
    const rotated = nextCertificateEvent(mesh, 'rotated');
    files.write(next);
    await rotated;
    const after = await get(port, ca.cert, checkout);
    expect(after.status).to.equal(200);
    expect(after.serverSerial).to.equal(serialOf(next.cert));
    expect(after.serverSerial).to.not.equal(before.serverSerial);
  });

  it('serverOptions() makes an mTLS server for a framework, and callerIdentity(req) names the caller there', async function () {
    const options = mesh.serverOptions();
    expect(options).to.include({ requestCert: true, rejectUnauthorized: true, ca: ca.cert });
    const port = await listen(createHttpsServer(options, (req, res) => void res.end(JSON.stringify(callerIdentity(req)))));
    expect(JSON.parse((await get(port, ca.cert, checkout)).body)).to.deep.equal({ identity: CHECKOUT, service: 'checkout' });
  });

  it('needs a certificate and the mesh CA: without them createServer() throws MESHFETCH_CONFIG', async function () {
    const plain = createMesh({ service: 'payments', logLevel: 'silent', env: {} });
    try {
      expect(() => plain.createServer(() => {})).to.throw(MeshError, /MESHFETCH_TLS_CERT, MESHFETCH_TLS_KEY and MESHFETCH_TLS_CA/);
      expect(() => plain.serverOptions()).to.throw(MeshError).with.property('code', ErrorCode.Config);
    } finally {
      await plain.close();
    }
  });
});
