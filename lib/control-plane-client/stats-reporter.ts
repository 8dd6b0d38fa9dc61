import type { Agent } from 'node:http';
import type { Logger } from '../log.ts';
import { reportOf } from '../telemetry/report.ts';
import type { MeshStatsSnapshot } from '../telemetry/stats.ts';
import type { TlsPem } from '../tls/material.ts';
import { controlPlaneAgent, postJson } from './post-json.ts';
import { controlPlaneUrl } from './url.ts';

export interface StatsReporterOptions {
  /** Where to report: the replica the policy watch is on at the time of each report. */
  readonly controlPlane: () => URL;
  readonly instance: string;
  readonly interval: number;
  readonly snapshot: () => MeshStatsSnapshot;
  readonly tls: TlsPem;
  readonly logger: Logger;
}

/**
 * Sends the mesh's windowed figures to POST /v1/reports every `interval` ms, from one unref'd timer
 * per mesh, never from a call. Each report is the whole window, so a lost one loses nothing the next
 * does not carry: a failed report is dropped, and a tick while one is in flight sends nothing.
 */
export class StatsReporter {
  readonly #options: StatsReporterOptions;
  readonly #agent: Agent;
  readonly #timer: NodeJS.Timeout;
  #sending = false;

  constructor(options: StatsReporterOptions) {
    this.#options = options;
    this.#agent = controlPlaneAgent(options.controlPlane(), options.tls);
    this.#timer = setInterval(() => this.send(), options.interval);
    this.#timer.unref();
  }

  /** Sends a report now unless one is in flight; resolves when it is answered or dropped. */
  async send(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      await postJson(controlPlaneUrl(this.#options.controlPlane(), '/v1/reports'), this.#agent, JSON.stringify(reportOf(this.#options.snapshot(), this.#options.instance)), this.#options.interval);
    } catch (err) {
      this.#options.logger.debug('stats report dropped', { error: String(err) });
    } finally {
      this.#sending = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#agent.destroy();
  }
}
