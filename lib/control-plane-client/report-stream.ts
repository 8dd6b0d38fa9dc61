import { request as httpRequest } from 'node:http';
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log.ts';
import { REPORT_STREAM_MAX_AGE_MS, REPORT_STREAM_TYPE } from '../telemetry/report.ts';

export interface ReportStreamOptions {
  /** POST /v1/reports on one replica. */
  readonly url: URL;
  readonly agent: Agent;
  /** Milliseconds between reports. */
  readonly interval: number;
  readonly logger: Logger;
  /** The age past which no more reports go on a stream (default REPORT_STREAM_MAX_AGE_MS). */
  readonly maxAge?: number;
}

/**
 * One replica's stream of reports: a chunked POST that carries one report per line and stays open
 * for the reports due within REPORT_STREAM_MAX_AGE_MS, so that the control plane answers once a
 * minute rather than once a report. A report is written and forgotten: one that cannot go (the
 * stream broke, or the replica refused it) is dropped and logged, and the next opens a new stream.
 * A replica that has not taken the previous report by the time the next is due is not reading:
 * that stream is cut and the report goes on a new one, so nothing piles up behind a stuck replica.
 */
export class ReportStream {
  readonly #options: ReportStreamOptions;
  readonly #maxAge: number;
  #stream: Stream | undefined;

  constructor(options: ReportStreamOptions) {
    this.#options = options;
    this.#maxAge = options.maxAge ?? REPORT_STREAM_MAX_AGE_MS;
  }

  /** Writes one report (a JSON text on one line, ending in "\n"); returns at once. */
  send(line: string): void {
    let stream = this.#stream;
    if (stream && stream.req.writableLength > 0) {
      stream.drop('the replica has not taken the previous report');
      stream = undefined;
    }
    stream ??= this.#open();
    stream.req.write(line);
    // A stream ends with its last report: the next would find it maxAge old. It never idles open for nothing.
    if (Date.now() - stream.openedAt + this.#options.interval >= this.#maxAge) this.#end(stream);
  }

  /** Cuts the open stream, if any: the control plane keeps the reports it has whole, and nothing of a cut one. */
  close(): void {
    this.#stream?.drop(undefined);
  }

  #open(): Stream {
    const { url, agent, logger } = this.#options;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: 'POST', agent, headers: { 'content-type': REPORT_STREAM_TYPE } });
    let over = false;
    const stream: Stream = {
      req,
      openedAt: Date.now(),
      drop: (error) => {
        if (over) return;
        over = true;
        if (this.#stream === stream) this.#stream = undefined;
        req.destroy();
        if (error !== undefined) logger.debug('stats report dropped', { controlPlane: url.origin, error });
      },
    };
    req.on('error', (err) => stream.drop(String(err)));
    req.on('response', (res) => {
      if (res.statusCode === 204) {
        over = true;
        if (this.#stream === stream) this.#stream = undefined;
        return void res.resume();
      }
      // Refused (the message names the report and the problem), or not a control plane at all.
      readSome(res, (text) => stream.drop(`report stream answered HTTP ${res.statusCode}: ${messageOf(text)}`));
    });
    this.#stream = stream;
    return stream;
  }

  /** Ends the stream; an answer that does not come within an interval is not waited for. */
  #end(stream: Stream): void {
    if (this.#stream === stream) this.#stream = undefined;
    stream.req.setTimeout(this.#options.interval, () => stream.drop('report stream: no answer after its end'));
    stream.req.end();
  }
}

interface Stream {
  readonly req: ClientRequest;
  readonly openedAt: number;
  /** Ends it for good, logging why unless `error` is undefined (closed on purpose); a second call does nothing. */
  readonly drop: (error: string | undefined) => void;
}

/** The first 2 KiB or so of a response, to `done` when it ends or breaks off. */
function readSome(res: IncomingMessage, done: (text: string) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    if (text.length < 2_048) text += chunk;
  });
  res.once('end', () => done(text));
  res.once('error', () => done(text));
}

/** The control plane's `{ error: { message } }`, or the start of whatever else came. */
function messageOf(text: string): string {
  try {
    const message: unknown = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not the control plane's JSON: shown as it came
  }
  return text.slice(0, 200);
}
