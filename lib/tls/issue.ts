import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API (its DI container checks at import)
import * as x509 from '@peculiar/x509';

/**
 * Development certificates: a CA and certificates it signs, with SPIFFE URI SANs. Made with
 * @peculiar/x509 on Node's webcrypto (globalThis.crypto) (ECDSA P-256, SHA-256); used by `meshfetch certs` and the tests.
 */

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface IssuedPem {
  /** The certificate, PEM. */
  readonly cert: string;
  /** Its PKCS#8 private key, PEM. A secret: never log it. */
  readonly key: string;
}

export interface CertificateAuthority extends IssuedPem {
  readonly name: string;
  /** @internal the signing key, kept so that one CA can issue many certificates without re-importing. */
  readonly signingKey: CryptoKey;
  readonly certificate: x509.X509Certificate;
}

export interface Validity {
  /** Default: one minute ago (so that a clock a little behind still accepts it). */
  notBefore?: Date;
  /** Default: notBefore + `days`. */
  notAfter?: Date;
  /** Default 365 for a CA, 30 for a service certificate. */
  days?: number;
}

export interface IssueOptions extends Validity {
  /** Subject common name (default: the SPIFFE id's last segment, or the first DNS name). */
  commonName?: string;
  /** URI SAN, e.g. "spiffe://meshfetch.local/payments". */
  spiffeId?: string;
  dns?: readonly string[];
  ips?: readonly string[];
  /** Extended key usage (default both: a mesh service is a server and a client). */
  usage?: 'server' | 'client' | 'both';
}

const webcrypto = globalThis.crypto;
x509.cryptoProvider.set(webcrypto);

function validity(options: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? defaultDays) * DAY);
  return { notBefore, notAfter };
}

/** A random positive 16-byte serial number, hex. */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

/** PEM text ending with a newline, so that files and bundles concatenate into valid PEM. */
function certificatePem(certificate: x509.X509Certificate): string {
  return `${certificate.toString('pem')}\n`;
}

/** CN values are written into a distinguished name string: escape its special characters. */
function dn(commonName: string): string {
  return `CN=${commonName.replace(/([,+"\\<>;=#])/g, '\\$1')}`;
}

/** A self-signed CA that may sign leaf certificates only (pathLength 0). */
export async function createCertificateAuthority(name = 'meshfetch development CA', options: Validity = {}): Promise<CertificateAuthority> {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: dn(name),
    ...validity(options, 365),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name, cert: certificatePem(certificate), key: await pkcs8Pem(keys.privateKey), signingKey: keys.privateKey, certificate };
}

/** Loads a CA written by `meshfetch certs` (or any P-256 CA with a PKCS#8 key) to issue more certificates. */
export async function importCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), ALGORITHM, false, ['sign']);
  const name = certificate.subjectName.getField('CN')[0] ?? certificate.subject;
  return { name, cert: certPem, key: keyPem, signingKey, certificate };
}

const USAGES = {
  server: [x509.ExtendedKeyUsage.serverAuth],
  client: [x509.ExtendedKeyUsage.clientAuth],
  both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
} as const;

/** A leaf certificate signed by `ca`, with the given SANs, and its fresh P-256 key. */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Promise<IssuedPem> {
  const names: x509.JsonGeneralName[] = [
    ...(options.spiffeId ? [{ type: 'url' as const, value: options.spiffeId }] : []),
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const commonName = options.commonName ?? options.spiffeId?.split('/').pop() ?? options.dns?.[0] ?? 'meshfetch';
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: dn(commonName),
    issuer: ca.certificate.subject,
    ...validity(options, 30),
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([...USAGES[options.usage ?? 'both']]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
    ],
  });
  return { cert: certificatePem(certificate), key: await pkcs8Pem(keys.privateKey) };
}
