import type { Agent } from 'node:http';
import type { Logger } from '../log.ts';
import { reportOf } from '../telemetry/report.ts';
import type { MeshStatsSnapshot } from '../telemetry/stats.ts';
import type { TlsPem } from '../tls/material.ts';
import { controlPlaneAgent } from './post-json.ts';
import { ReportStream } from './report-stream.ts';
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
 * Sends the mesh's windowed figures to every replica every `interval` ms, from one unref'd timer per
 * mesh, never from a call, each replica's on its own stream of reports (POST /v1/reports, a report a
 * line). Each report is the whole window, so a lost one loses nothing the next does not carry: a
 * report that cannot go is dropped, never retried, and a slow or dead replica holds back no other.
 */
export class StatsReporter {
  readonly #options: StatsReporterOptions;
  readonly #agent: Agent;
  readonly #timer: NodeJS.Timeout;
  readonly #streams: readonly ReportStream[];

  constructor(options: StatsReporterOptions) {
    this.#options = options;
    this.#agent = controlPlaneAgent(options.controlPlanes[0]!);
    const { interval, logger, tls } = options;
    this.#streams = options.controlPlanes.map((replica) => new ReportStream({ url: controlPlaneUrl(replica, '/v1/reports'), agent: this.#agent, tls, interval, logger }));
    this.#timer = setInterval(() => this.send(), interval);
    this.#timer.unref();
  }

  /** Makes a report now and writes it to each replica's stream. */
  send(): void {
    let line: string;
    try {
      line = `${JSON.stringify(reportOf(this.#options.snapshot(), this.#options.instance))}\n`;
    } catch (err) {
      // Called from a timer: a report that cannot be made is dropped like one that cannot be sent.
      return this.#options.logger.debug('stats report dropped', { error: String(err) });
    }
    for (const stream of this.#streams) stream.send(line);
  }

  close(): void {
    clearInterval(this.#timer);
    for (const stream of this.#streams) stream.close();
    this.#agent.destroy();
  }
}
