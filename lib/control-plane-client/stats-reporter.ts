import type { Agent } from 'node:http';
import type { Logger } from '../log.ts';
import { reportOf } from '../telemetry/report.ts';
import type { MeshStatsSnapshot } from '../telemetry/stats.ts';
import type { TlsPem } from '../tls/material.ts';
import { controlPlaneAgent, postJson } from './post-json.ts';
import { controlPlaneUrl } from './url.ts';

export interface StatsReporterOptions {
  /**
   * Every replica of the control plane: each gets every report, so that each one's /v1/stats,
   * /metrics and dashboard show the whole mesh (a replica holds only the reports it was sent).
   */
  readonly controlPlanes: readonly URL[];
  readonly instance: string;
  readonly interval: number;
  readonly snapshot: () => MeshStatsSnapshot;
  readonly tls: TlsPem;
  readonly logger: Logger;
}

/**
 * Sends the mesh's windowed figures to POST /v1/reports on every replica every `interval` ms, from
 * one unref'd timer per mesh, never from a call. Each report is the whole window, so a lost one loses
 * nothing the next does not carry: a failed report is dropped, and a tick sends nothing to a replica
 * whose last report is still in flight (a slow or dead replica holds back no other).
 */
export class StatsReporter {
  readonly #options: StatsReporterOptions;
  readonly #agent: Agent;
  readonly #timer: NodeJS.Timeout;
  readonly #inFlight = new Set<URL>();

  constructor(options: StatsReporterOptions) {
    this.#options = options;
    this.#agent = controlPlaneAgent(options.controlPlanes[0]!, options.tls);
    this.#timer = setInterval(() => this.send(), options.interval);
    this.#timer.unref();
  }

  /** Sends a report now to each replica without one in flight; resolves when each is answered or dropped. */
  async send(): Promise<void> {
    const to = this.#options.controlPlanes.filter((replica) => !this.#inFlight.has(replica));
    if (to.length === 0) return;
    let body: string;
    try {
      body = JSON.stringify(reportOf(this.#options.snapshot(), this.#options.instance));
    } catch (err) {
      // Called from a timer: a report that cannot be made is dropped like one that cannot be sent.
      return this.#options.logger.debug('stats report dropped', { error: String(err) });
    }
    await Promise.all(to.map((replica) => this.#post(replica, body)));
  }

  async #post(replica: URL, body: string): Promise<void> {
    this.#inFlight.add(replica);
    try {
      await postJson(controlPlaneUrl(replica, '/v1/reports'), this.#agent, body, this.#options.interval);
    } catch (err) {
      this.#options.logger.debug('stats report dropped', { controlPlane: replica.origin, error: String(err) });
    } finally {
      this.#inFlight.delete(replica);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#agent.destroy();
  }
}
