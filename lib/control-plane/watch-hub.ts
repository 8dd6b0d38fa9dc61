import type { ServerResponse } from 'node:http';
import { Refusal } from './http.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import type { Revision } from './revision.ts';

/** The response header that tells a watcher how often to expect a heartbeat. */
export const HEARTBEAT_HEADER = 'x-meshfetch-heartbeat';

/** A watcher that has not taken this much of what was written to it is cut off. */
const MAX_BACKLOG_BYTES = 1 << 20;

const HEARTBEAT = Buffer.from(':\n\n');

/** The SSE frame of one revision: built once, written to every watcher. */
export function revisionEvent(revision: Revision): Buffer {
  return Buffer.from(`event: policy\nid: ${revision.revision}\ndata: ${revision.body}\n\n`);
}

/**
 * The open watch streams (server-sent events). Each new revision is one `policy` event whose bytes
 * are built once and shared by every stream; one timer for the whole hub writes heartbeats so that a
 * client can tell a quiet stream from a dead one.
 */
export class WatchHub {
  readonly #streams = new Set<ServerResponse>();
  readonly #metrics: ControlPlaneMetrics;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #interval: number;
  #current: Buffer;

  constructor(current: Revision, metrics: ControlPlaneMetrics, heartbeatInterval: number) {
    this.#current = revisionEvent(current);
    this.#metrics = metrics;
    this.#interval = heartbeatInterval;
    this.#heartbeat = setInterval(() => this.#writeAll(HEARTBEAT), heartbeatInterval);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Refuses a new stream past `limit` open ones: a flood of watchers cannot exhaust the server. */
  admit(limit: number): void {
    if (this.#streams.size >= limit) {
      throw new Refusal(503, 'too-many-watchers', `watch: this control plane holds at most ${limit} open streams, and that many are open; retry later`, { headers: { 'retry-after': '5' } });
    }
  }

  /**
   * Starts a stream on `res`. The current revision is sent first unless the client has it already
   * (`upToDate`, from its Last-Event-ID); `onClose` runs once when the stream ends.
   */
  attach(res: ServerResponse, upToDate: boolean, onClose: () => void): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      [HEARTBEAT_HEADER]: String(this.#interval),
    });
    res.socket?.setNoDelay(true);
    res.write(upToDate ? HEARTBEAT : this.#current);
    if (!upToDate) this.#metrics.pushes.inc();
    this.#streams.add(res);
    this.#metrics.watchers.set(this.#streams.size);
    res.once('close', () => {
      this.#streams.delete(res);
      this.#metrics.watchers.set(this.#streams.size);
      onClose();
    });
  }

  publish(revision: Revision): void {
    this.#current = revisionEvent(revision);
    this.#metrics.pushes.inc(this.#writeAll(this.#current));
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const res of this.#streams) res.end();
  }

  #writeAll(frame: Buffer): number {
    let written = 0;
    for (const res of this.#streams) {
      if (res.writableLength > MAX_BACKLOG_BYTES) {
        res.destroy();
        continue;
      }
      res.write(frame);
      written++;
    }
    return written;
  }
}
