import { checkServerIdentity as checkHostname } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { ErrorCode, MeshError } from '../errors.ts';

/** The subject alternative names of a certificate, by kind. */
export interface SubjectAltNames {
  readonly uris: readonly string[];
  readonly dns: readonly string[];
  readonly ips: readonly string[];
}

/**
 * Parses Node's `subjectaltname` text ("DNS:localhost, IP Address:127.0.0.1, URI:spiffe://td/x").
 * Node quotes a value that holds a comma or quote as a JSON string, so those are unquoted.
 */
export function parseSubjectAltNames(text: string | undefined): SubjectAltNames {
  const uris: string[] = [];
  const dns: string[] = [];
  const ips: string[] = [];
  for (const match of (text ?? '').matchAll(/(DNS|IP Address|URI|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/g)) {
    const raw = match[2]!;
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (match[1] === 'URI') uris.push(value);
    else if (match[1] === 'DNS') dns.push(value);
    else if (match[1] === 'IP Address') ips.push(value);
  }
  return { uris, dns, ips };
}

/** What a certificate says it is: its first URI SAN (a SPIFFE id), else its first DNS SAN, else its CN. */
export function identityOf(subjectAltName: string | undefined, commonName: string | undefined): string | undefined {
  const names = parseSubjectAltNames(subjectAltName);
  return names.uris[0] ?? names.dns[0] ?? commonName;
}

/** The identity of a peer certificate as node:tls hands it over. */
export function peerIdentity(cert: PeerCertificate): string | undefined {
  const cn = cert.subject?.CN as string | string[] | undefined;
  return identityOf(cert.subjectaltname, Array.isArray(cn) ? cn[0] : cn);
}

/** Every identity a certificate presents, for error messages: "URI:spiffe://td/x, DNS:localhost". */
function presented(cert: PeerCertificate): string {
  if (cert.subjectaltname) return cert.subjectaltname;
  const cn = cert.subject?.CN;
  return cn ? `CN=${String(cn)}` : 'no identity';
}

/** An identity with a scheme ("spiffe://…") is matched against URI SANs; anything else is a DNS name. */
function isUri(identity: string): boolean {
  return identity.includes('://');
}

/**
 * A `checkServerIdentity` for node:tls that accepts only a server certificate carrying `expected`:
 * a SPIFFE id (or any URI) must equal one of its URI SANs exactly; a DNS name is matched as TLS
 * hostname verification does (DNS SANs, wildcards included). The error names both identities.
 */
export function serverIdentityCheck(service: string, expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const ok = isUri(expected) ? parseSubjectAltNames(cert.subjectaltname).uris.includes(expected) : checkHostname(expected, cert) === undefined;
    if (ok) return undefined;
    return new MeshError(
      ErrorCode.Tls,
      `the server certificate of ${service} at ${host} does not carry its identity: expected ${expected}, presented ${presented(cert)}`,
      { service, retryable: false },
    );
  };
}

/** The service name a caller's identity stands for: a SPIFFE id's last path segment, else the identity. */
export function serviceOfIdentity(identity: string): string {
  if (!isUri(identity)) return identity;
  const path = identity.slice(identity.indexOf('://') + 3).split('/').slice(1);
  return path.at(-1) || identity;
}

/**
 * Whether a caller may call: each `allow` entry is a full identity (compared exactly), a service name
 * (compared with the identity's service), or "*" (any certificate from the mesh CA).
 */
export function isAllowed(allow: readonly string[], identity: string): boolean {
  const service = serviceOfIdentity(identity);
  return allow.some((entry) => entry === '*' || entry === identity || (!isUri(entry) && entry === service));
}
