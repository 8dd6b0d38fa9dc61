import { createCertificateAuthority, issueCertificate } from '../../lib/tls/issue.ts';
import type { CertificateAuthority, IssuedPem, IssueOptions } from '../../lib/tls/issue.ts';
import type { OriginTls, TransportTls } from '../../lib/transport/types.ts';

export type KeyPair = IssuedPem;

export interface TestCerts {
  /** The throwaway CA certificate (PEM) that signed the server and client certificates. */
  ca: string;
  caKey: string;
  /** The CA itself, to issue more certificates in a test (expired ones, other identities). */
  authority: CertificateAuthority;
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

/** A server certificate for loopback: 127.0.0.1, ::1 and localhost, plus the given options. */
export function issueServer(ca: CertificateAuthority, options: IssueOptions = {}): Promise<KeyPair> {
  return issueCertificate(ca, { dns: ['localhost'], ips: ['127.0.0.1', '::1'], usage: 'server', days: 2, ...options });
}

/** A client certificate with the given SPIFFE id. */
export function issueClient(ca: CertificateAuthority, spiffeId?: string, options: IssueOptions = {}): Promise<KeyPair> {
  return issueCertificate(ca, { spiffeId, commonName: 'meshfetch test client', usage: 'client', days: 2, ...options });
}

/**
 * A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, made in
 * process with the same code as `meshfetch certs` (lib/tls/issue.ts). Returns PEM strings.
 */
export async function generateCerts(options: CertOptions = {}): Promise<TestCerts> {
  const authority = await createCertificateAuthority(options.caName ?? 'meshfetch test CA', { days: 2 });
  const [server, client] = await Promise.all([
    issueServer(authority, { spiffeId: options.serverSpiffeId }),
    issueClient(authority, options.clientSpiffeId),
  ]);
  return { ca: authority.cert, caKey: authority.key, authority, server, client };
}

/** Transport TLS that never changes: the same options for every origin (for transport-level tests). */
export function fixedTls(options: OriginTls): TransportTls {
  return { forOrigin: () => options, onRotate: () => () => {} };
}
