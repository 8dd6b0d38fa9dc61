import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, TransportFactory } from '../../lib/index.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import { issueClient, issueServer } from '../helpers/certs.ts';
import { rejection } from '../helpers/rejection.ts';
import { TlsDir } from '../helpers/tls-files.ts';
import { TRANSPORTS } from '../helpers/transports.ts';

const PAYMENTS = 'spiffe://meshfetch.local/payments';
const CHECKOUT = 'spiffe://meshfetch.local/checkout';

/** openssl on PATH; installed with apt-get when missing and running as root, else a failure saying what to install. */
function ensureOpenssl(): void {
  if (spawnSync('openssl', ['version']).status === 0) return;
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', 'openssl'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (spawnSync('openssl', ['version']).status === 0) return;
  }
  throw new Error('the interop test needs the openssl CLI: install it (Debian/Ubuntu: apt-get install openssl)');
}

/** `openssl s_server` requiring a client certificate from `caFile`; resolves with its port once it accepts. */
async function startSServer(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-Verify', '1', '-verify_return_error', '-www', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`openssl s_server exited (${code}): ${output}`)));
  });
  return { child, port };
}


describe('interop: openssl s_server -Verify 1 (a TLS peer that is not Node)', function () {
  let dir: string;
  let clientFiles: TlsDir;
  let caOnly: TlsDir;
  let sserver: { child: ChildProcess; port: number };
  const meshes: Mesh[] = [];

  before(async function () {
    this.timeout(120_000); // an apt-get install, when openssl is missing
    ensureOpenssl();
    const ca = await createCertificateAuthority('mesh CA');
    const server = await issueServer(ca, { spiffeId: PAYMENTS });
    clientFiles = new TlsDir(await issueClient(ca, CHECKOUT), ca.cert);
    caOnly = new TlsDir(server, ca.cert);
    dir = mkdtempSync(join(tmpdir(), 'meshfetch-sserver-'));
    writeFileSync(join(dir, 'server.crt'), server.cert);
    writeFileSync(join(dir, 'server.key'), server.key);
    writeFileSync(join(dir, 'ca.crt'), ca.cert);
    sserver = await startSServer(['-cert', join(dir, 'server.crt'), '-key', join(dir, 'server.key'), '-CAfile', join(dir, 'ca.crt')]);
  });

  after(async function () {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
    if (sserver?.child.exitCode === null) {
      sserver.child.kill();
      await once(sserver.child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
    clientFiles.remove();
    caOnly.remove();
  });

  function mesh(transport: TransportFactory, identity: string, files: TlsDir): Mesh {
    const origin = `https://127.0.0.1:${sserver.port}`;
    const created = createMesh({
      service: 'checkout',
      logLevel: 'silent',
      env: {},
      transport,
      tls: files === caOnly ? { caFile: files.ca } : files.options.tls,
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [origin], identity, retry: null } } },
    });
    meshes.push(created);
    return created;
  }

  for (const [name, transport] of TRANSPORTS) {
    it(`${name}: presents the client certificate openssl asked for, and checks openssl's certificate against the identity`, async function () {
      const res = await mesh(transport(), PAYMENTS, clientFiles).client('payments').fetch('/');
      expect(res.status).to.equal(200);
      const page = await res.text();
      expect(page).to.contain('Client certificate');
      expect(page).to.contain(`URI:${CHECKOUT}`);
    });

    it(`${name}: refuses openssl's certificate when it does not carry the expected identity`, async function () {
      const err = await rejection(mesh(transport(), 'spiffe://meshfetch.local/ledger', clientFiles).client('payments').fetch('/'));
      expect((err as MeshError).code, String(err)).to.equal(ErrorCode.Tls);
      expect((err as MeshError).message).to.contain(`expected spiffe://meshfetch.local/ledger, presented URI:${PAYMENTS}`);
    });

    it(`${name}: without a client certificate, openssl refuses the connection`, async function () {
      const err = await rejection(mesh(transport(), PAYMENTS, caOnly).client('payments').fetch('/'));
      expect(err, String(err)).to.be.instanceOf(MeshError);
      expect([ErrorCode.Tls, ErrorCode.Reset]).to.include((err as MeshError).code);
    });
  }
});
