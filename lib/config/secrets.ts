import type { TlsMaterial } from '../transport/types.ts';

/**
 * Userinfo in text that may be a URL ("https://user:pass@host", "user:pass@host") replaced, so that an
 * error message can quote a bad value without its password.
 */
export function withoutUserinfo(text: string): string {
  return text.replace(/[^\s/,@]*@/g, '***@');
}

/**
 * The client's TLS files. The private key is a private field behind a getter, so util.inspect,
 * console.log, JSON.stringify and object spread never print it; the transports read `key` directly.
 */
export class TlsPems implements TlsMaterial {
  readonly cert: string | undefined;
  readonly ca: string | undefined;
  readonly #key: string | undefined;

  constructor(cert: string | undefined, key: string | undefined, ca: string | undefined) {
    this.cert = cert;
    this.ca = ca;
    this.#key = key;
  }

  get key(): string | undefined {
    return this.#key;
  }
}
