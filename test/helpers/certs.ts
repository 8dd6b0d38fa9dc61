import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  /** The throwaway CA certificate (PEM) that signed the server and client certificates. */
  ca: string;
  caKey: string;
  /** SAN IP:127.0.0.1, DNS:localhost and, when asked for, the server's URI SAN (a SPIFFE id). */
  server: KeyPair;
  /** A client certificate (extendedKeyUsage clientAuth), with the client's URI SAN when asked for. */
  client: KeyPair;
}

export interface CertOptions {
  /** e.g. "spiffe://meshfetch.local/payments", written into the server certificate as a URI SAN. */
  serverSpiffeId?: string;
  /** A URI SAN for the client certificate. */
  clientSpiffeId?: string;
  /** Common name of the CA (default "meshfetch test CA"). */
  caName?: string;
}

const OPENSSL = '/usr/bin/openssl';

function openssl(cwd: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Issues a P-256 key and a certificate signed by the CA in `dir`, with the given extensions. */
function issue(dir: string, name: string, subject: string, extensions: string[]): KeyPair {
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(dir, [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject,
  ]);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial',
    `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

/**
 * Generates a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate with
 * the openssl CLI, in a temporary directory that is removed before returning. Returns PEM strings.
 */
export function generateCerts(options: CertOptions = {}): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-certs-'));
  try {
    openssl(dir, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-sha256',
      '-subj', `/CN=${options.caName ?? 'meshfetch test CA'}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const serverSans = ['IP:127.0.0.1', 'DNS:localhost'];
    if (options.serverSpiffeId) serverSans.push(`URI:${options.serverSpiffeId}`);
    const server = issue(dir, 'server', '/CN=localhost', [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${serverSans.join(',')}`,
    ]);
    const clientExtensions = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ];
    if (options.clientSpiffeId) clientExtensions.push(`subjectAltName=URI:${options.clientSpiffeId}`);
    const client = issue(dir, 'client', '/CN=meshfetch test client', clientExtensions);
    return {
      ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      caKey: readFileSync(join(dir, 'ca.key'), 'utf8'),
      server,
      client,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
