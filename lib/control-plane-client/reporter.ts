import type { Agent as HttpAgent } from 'node:http';
import type { Logger } from '../log.ts';
import type { TlsPem } from '../tls/material.ts';
import { controlPlaneAgent, postJson } from './post-json.ts';
import { controlPlaneUrl } from './url.ts';

export interface RevisionReport {
  readonly revision: string | undefined;
  readonly status: 'applied' | 'rejected';
  readonly error: string | undefined;
}

/**
 * Tells the control plane which revision this client applied or refused (POST /v1/clients/report).
 * Only the latest report matters: one is in flight at a time, a newer one replaces a waiting one, and
 * the latest is sent again each time the watch (re)connects, so a restarted control plane learns it.
 */
export class RevisionReporter {
  #url: URL;
  readonly #identity: { service: string; instance: string };
  readonly #logger: Logger;
  readonly #tls: TlsPem;
  readonly #agent: HttpAgent;
  #latest: RevisionReport | undefined;
  #delivered = true;
  #sending = false;

  constructor(controlPlane: URL, identity: { service: string; instance: string }, tls: TlsPem, logger: Logger) {
    this.#url = controlPlaneUrl(controlPlane, '/v1/clients/report');
    this.#identity = identity;
    this.#logger = logger;
    this.#tls = tls;
    this.#agent = controlPlaneAgent(controlPlane);
  }

  /** Reports go to this control plane replica from now on (the one the watch is on). */
  useControlPlane(controlPlane: URL): void {
    this.#url = controlPlaneUrl(controlPlane, '/v1/clients/report');
  }

  report(report: RevisionReport): void {
    this.#latest = report;
    this.#delivered = false;
    this.flush();
  }

  /** Sends the latest report again: a restarted control plane has forgotten it. */
  resend(): void {
    this.#delivered = false;
    this.flush();
  }

  /** Sends the latest report if it has not been delivered yet. */
  flush(): void {
    if (this.#sending || this.#delivered || !this.#latest) return;
    const report = this.#latest;
    this.#sending = true;
    this.#post({ ...this.#identity, ...report }).then(
      () => {
        this.#sending = false;
        if (this.#latest === report) this.#delivered = true;
        else this.flush();
      },
      (err: unknown) => {
        this.#sending = false;
        this.#logger.debug('revision report not delivered; it is sent again on reconnect', { error: String(err) });
      },
    );
  }

  close(): void {
    this.#agent.destroy();
  }

  #post(body: object): Promise<void> {
    return postJson(this.#url, this.#agent, this.#tls, JSON.stringify(body));
  }
}
