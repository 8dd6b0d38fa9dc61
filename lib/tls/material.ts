import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { identityOf } from './identity.ts';

/** The PEM texts of this service's TLS material, as read from the files. */
export interface TlsPem {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
}

export type TlsPart = 'cert' | 'key' | 'ca';

/** Why a set of PEM texts cannot be used, and which file is to blame. */
export class MaterialProblem extends Error {
  readonly part: TlsPart;
  constructor(part: TlsPart, reason: string) {
    super(reason);
    this.part = part;
  }
}

/** Each marker on a line of its own, as OpenSSL's PEM reader wants them. */
const CERTIFICATE_BLOCK = /^-----BEGIN CERTIFICATE-----\r?$[\s\S]+?^-----END CERTIFICATE-----\r?$/gm;

/** Each certificate of a PEM text; a block that was cut off (a file caught mid-write) is a problem. */
function certificates(part: TlsPart, pem: string, what: string): X509Certificate[] {
  requirePem(part, pem);
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  const begun = pem.split('-----BEGIN ').length - 1;
  if (blocks.length === 0 || blocks.length !== begun) {
    throw new MaterialProblem(part, `${what} holds an incomplete or non-certificate PEM block (a file caught mid-write?)`);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new MaterialProblem(part, `${what}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

function requirePem(part: TlsPart, pem: string): void {
  if (!pem.includes('-----BEGIN ')) throw new MaterialProblem(part, 'not a PEM file (no "-----BEGIN" line)');
}

function within(cert: X509Certificate, now: number): void {
  if (now < cert.validFromDate.getTime()) {
    throw new MaterialProblem('cert', `the certificate is not valid yet (notBefore ${cert.validFromDate.toISOString()})`);
  }
  if (now > cert.validToDate.getTime()) {
    throw new MaterialProblem('cert', `the certificate has expired (notAfter ${cert.validToDate.toISOString()})`);
  }
}

/**
 * One validated set of TLS material: a certificate and the key that matches it, within its validity
 * period and issued by a CA of the bundle, and the CA bundle (which may hold an old and a new CA
 * during a trust rotation). Printing it never shows the key.
 */
export class TlsMaterial {
  readonly #pem: TlsPem;
  /** The leaf certificate (the first of the certificate file), when a certificate is configured. */
  readonly leaf: X509Certificate | undefined;
  readonly authorities: readonly X509Certificate[];
  /** One secure context for every client connection: the CA bundle is parsed once, not per handshake. */
  readonly secureContext: SecureContext;
  /** The leaf's identity (its SPIFFE id, else DNS name, else CN). */
  readonly subject: string | undefined;
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;

  constructor(pem: TlsPem, now = Date.now()) {
    this.#pem = pem;
    this.authorities = pem.ca === undefined ? [] : certificates('ca', pem.ca, 'the CA bundle');
    for (const [i, ca] of this.authorities.entries()) {
      if (!ca.ca) throw new MaterialProblem('ca', `certificate ${i + 1} of the CA bundle (${ca.subject.replace(/\n/g, ', ')}) is not a CA`);
    }
    if (pem.cert !== undefined) {
      const chain = certificates('cert', pem.cert, 'the certificate file');
      const leaf = chain[0]!;
      requirePem('key', pem.key ?? '');
      let key;
      try {
        key = createPrivateKey(pem.key ?? '');
      } catch (err) {
        // The message of a key parse error never holds the key itself.
        throw new MaterialProblem('key', `the private key cannot be parsed: ${(err as Error).message}`);
      }
      if (!leaf.checkPrivateKey(key)) throw new MaterialProblem('key', 'the private key does not match the certificate');
      within(leaf, now);
      if (this.authorities.length > 0) {
        const top = chain.at(-1)!;
        if (!this.authorities.some((ca) => top.checkIssued(ca) && top.verify(ca.publicKey))) {
          throw new MaterialProblem('cert', 'the certificate was not issued by any CA of the CA bundle');
        }
      }
      this.leaf = leaf;
    }
    try {
      this.secureContext = createSecureContext({ ca: pem.ca, cert: pem.cert, key: pem.key });
    } catch (err) {
      throw new MaterialProblem('cert', `the material is refused by TLS: ${(err as Error).message}`);
    }
    this.subject = this.leaf && identityOf(this.leaf.subjectAltName, cnOf(this.leaf));
    this.notBefore = this.leaf?.validFromDate.getTime();
    this.notAfter = this.leaf?.validToDate.getTime();
  }

  get cert(): string | undefined {
    return this.#pem.cert;
  }

  /** The private key. A secret: pass it to TLS, never to a log, span, error or printout. */
  get key(): string | undefined {
    return this.#pem.key;
  }

  get ca(): string | undefined {
    return this.#pem.ca;
  }

  /** Whether `pem` holds the same texts as this material (the watcher's content check). */
  sameAs(pem: TlsPem): boolean {
    return samePem(pem, this.#pem);
  }

  toJSON(): object {
    return { subject: this.subject, notAfter: this.notAfter && new Date(this.notAfter).toISOString(), authorities: this.authorities.length };
  }

  [inspect.custom](): string {
    return `TlsMaterial ${JSON.stringify(this.toJSON())}`;
  }
}

export function samePem(a: TlsPem, b: TlsPem): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

function cnOf(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}
