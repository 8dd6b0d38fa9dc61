import { Agent, fetch } from 'undici';
import type { StatsView } from '../control-plane/report-aggregator.ts';
import type { TlsPem } from '../tls/material.ts';
import { controlPlaneUrl } from './url.ts';

/** What the control plane said when it refused a request, or why it could not be asked. */
export class ControlPlaneRequestError extends Error {
  /** The HTTP status; undefined when the control plane could not be reached. */
  readonly status: number | undefined;
  readonly problems: readonly string[];
  /** The revision in force, when the control plane named it (a 412 does). */
  readonly current: string | undefined;

  constructor(message: string, status: number | undefined, problems: readonly string[] = [], current?: string) {
    super(message);
    this.status = status;
    this.problems = problems;
    this.current = current;
  }
}

export interface PolicyDocumentAnswer {
  readonly revision: string;
  readonly document: Record<string, unknown>;
}

export interface PublishAnswer {
  readonly revision: string;
  readonly previous: string;
  readonly changed: boolean;
}

export interface ClientEntry {
  readonly service: string;
  readonly instance: string;
  readonly revision: string | null;
  readonly rejectedRevision: string | null;
  readonly lastError: string | null;
  readonly lastSeen: string;
  readonly watching: number;
}

export interface HistoryEntry {
  readonly revision: string;
  readonly source: string;
  readonly publishedAt: string;
  readonly current: boolean;
}

/**
 * The control plane's HTTP API for people and scripts (the CLI). The admin token is sent, never
 * shown; with TLS material, the client certificate is presented (a control plane may require one).
 */
export class ControlPlaneApi {
  readonly #base: URL;
  readonly #token: string | undefined;
  readonly #dispatcher: Agent;

  constructor(base: URL, adminToken?: string, tls: TlsPem = {}) {
    this.#base = base;
    this.#token = adminToken;
    this.#dispatcher = new Agent({ connect: { cert: tls.cert, key: tls.key, ca: tls.ca } });
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }

  async getPolicy(): Promise<PolicyDocumentAnswer> {
    const res = await this.#send('GET', '/v1/policy');
    const document = (await res.json()) as Record<string, unknown>;
    return { revision: String(document.revision), document };
  }

  publish(text: string, contentType: string, ifMatch?: string): Promise<PublishAnswer> {
    return this.#json('PUT', '/v1/policy', { body: text, contentType, ifMatch, write: true });
  }

  rollback(to?: string, ifMatch?: string): Promise<PublishAnswer> {
    return this.#json('POST', '/v1/policy/rollback', { body: JSON.stringify(to === undefined ? {} : { revision: to }), contentType: 'application/json', ifMatch, write: true });
  }

  async clients(): Promise<ClientEntry[]> {
    return ((await this.#json('GET', '/v1/clients')) as { clients: ClientEntry[] }).clients;
  }

  /** GET /v1/stats: the mesh's merged figures; `query` holds window, from, to and route filters. */
  stats(query: Record<string, string | undefined>): Promise<StatsView> {
    const params = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined));
    return this.#json('GET', '/v1/stats', { search: params.toString() });
  }

  async history(): Promise<HistoryEntry[]> {
    return ((await this.#json('GET', '/v1/policy/history')) as { revisions: HistoryEntry[] }).revisions;
  }

  async #json<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    return (await (await this.#send(method, path, options)).json()) as T;
  }

  async #send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.contentType) headers['content-type'] = options.contentType;
    if (options.ifMatch) headers['if-match'] = `"${options.ifMatch}"`;
    if (options.write && this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    const url = controlPlaneUrl(this.#base, path);
    if (options.search) url.search = options.search;
    let res: Response;
    try {
      res = (await fetch(url, { method, headers, body: options.body, signal: AbortSignal.timeout(10_000), dispatcher: this.#dispatcher })) as unknown as Response;
    } catch (err) {
      const cause = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ControlPlaneRequestError(`cannot reach the control plane at ${this.#base.origin}: ${cause}`, undefined);
    }
    if (res.ok) return res;
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string; problems?: string[] } };
    const etag = res.headers.get('etag')?.replace(/"/g, '');
    throw new ControlPlaneRequestError(body.error?.message ?? `HTTP ${res.status}`, res.status, body.error?.problems ?? [], etag);
  }
}

interface SendOptions {
  body?: string;
  /** The query string, without "?". */
  search?: string;
  contentType?: string;
  ifMatch?: string | undefined;
  write?: boolean;
}
