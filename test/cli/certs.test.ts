import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createMesh } from '../../lib/index.ts';

const run = promisify(execFile);
const CLI = new URL('../../lib/cli/main.ts', import.meta.url).pathname;

describe('meshfetch certs', function () {
  let out: string;

  beforeEach(() => {
    out = mkdtempSync(join(tmpdir(), 'meshfetch-certs-cli-'));
  });

  afterEach(() => rmSync(out, { recursive: true, force: true }));

  it('makes a CA and SPIFFE certificates that a mesh client and mesh.createServer() use as they are', async function () {
    const { stdout } = await run(process.execPath, [CLI, 'certs', '--out', out, 'payments', 'checkout']);
    expect(stdout).to.contain('spiffe://meshfetch.local/payments').and.contain('spiffe://meshfetch.local/checkout');
    const ca = new X509Certificate(readFileSync(join(out, 'ca.crt')));
    expect(ca.ca).to.equal(true);
    const payments = new X509Certificate(readFileSync(join(out, 'payments.crt')));
    expect(payments.subjectAltName).to.contain('URI:spiffe://meshfetch.local/payments').and.contain('DNS:payments').and.contain('IP Address:127.0.0.1');
    expect(payments.verify(ca.publicKey)).to.equal(true);
    for (const key of ['ca.key', 'payments.key', 'checkout.key']) expect(statSync(join(out, key)).mode & 0o777).to.equal(0o600);

    const files = (service: string) => ({ certFile: join(out, `${service}.crt`), keyFile: join(out, `${service}.key`), caFile: join(out, 'ca.crt') });
    const server = createMesh({ service: 'payments', env: {}, logLevel: 'silent', tls: files('payments'), policy: { apiVersion: 'meshfetch/v1', services: { payments: { allow: ['checkout'] } } } });
    const https = server.createServer((req, res) => void res.end(`hello ${req.caller.identity}`)).listen(0, '127.0.0.1');
    await once(https, 'listening');
    const origin = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    const client = createMesh({
      service: 'checkout', env: {}, logLevel: 'silent', tls: files('checkout'),
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [origin], identity: 'spiffe://meshfetch.local/payments' } } },
    });
    try {
      expect(await (await client.client('payments').fetch('/')).text()).to.equal('hello spiffe://meshfetch.local/checkout');
    } finally {
      await client.close();
      https.closeAllConnections();
      https.close();
      await server.close();
    }
  });

  it('issues more certificates from the CA already in the directory, with extra SANs and a trust domain', async function () {
    await run(process.execPath, [CLI, 'certs', '--out', out, 'payments']);
    const caBefore = readFileSync(join(out, 'ca.crt'), 'utf8');
    const { stdout } = await run(process.execPath, [CLI, 'certs', '--out', out, '--trust-domain', 'prod.example', '--dns', 'orders.internal', '--days', '2', 'orders']);
    expect(stdout).to.contain(`using the CA in ${join(out, 'ca.crt')}`);
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).to.equal(caBefore);
    const orders = new X509Certificate(readFileSync(join(out, 'orders.crt')));
    expect(orders.subjectAltName).to.contain('URI:spiffe://prod.example/orders').and.contain('DNS:orders.internal');
    expect(orders.verify(new X509Certificate(caBefore).publicKey)).to.equal(true);
    expect(orders.validToDate.getTime() - orders.validFromDate.getTime()).to.equal(2 * 86_400_000);
  });

  it('exits non-zero with one line naming a bad flag', async function () {
    const err = (await run(process.execPath, [CLI, 'certs', '--out', out, '--days', 'soon', 'payments']).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).to.equal(1);
    expect(err.stderr).to.equal('meshfetch: MESHFETCH_CONFIG: --days "soon": expected a positive number of days\n');
  });
});
