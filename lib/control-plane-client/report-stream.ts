import { request as httpRequest } from 'node:http';
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log.ts';
import type { TlsPem } from '../tls/material.ts';
import { certificateNow } from './post-json.ts';
import { REPORT_STREAM_LONGEST_INTERVAL_MS, REPORT_STREAM_MAX_AGE_MS, REPORT_STREAM_TYPE } from '../telemetry/report.ts';

export interface ReportStreamOptions {
  /** POST /v1/reports on one replica. */
  readonly url: URL;
  readonly agent: Agent;
  /** The mesh's client certificate over HTTPS (live material: read as each stream opens). */
  readonly tls?: TlsPem | undefined;
  /** Milliseconds between reports. */
  readonly interval: number;
  readonly logger: Logger;
  /** A stream carries the reports due within this span, one every `interval` (default REPORT_STREAM_MAX_AGE_MS). */
  readonly maxAge?: number;
}

/**
 * One replica's stream of reports: a chunked POST that carries one report per line and stays open
 * for the reports due within REPORT_STREAM_MAX_AGE_MS, so that the control plane answers once every
 * five minutes rather than once a report (a mesh reporting less often than once a minute sends each
 * report alone: the control plane cuts a stream quiet for two). A report is written and forgotten: one that cannot go (the
 * stream broke, or the replica refused it) is dropped and logged, and the next opens a new stream.
 * A replica that has not taken the previous report by the time the next is due is not reading:
 * that stream is cut and the report goes on a new one, so nothing piles up behind a stuck replica.
 */
export class ReportStream {
  readonly #options: ReportStreamOptions;
  /** The reports due within the max age: each stream carries this many and ends with the last. */
  readonly #reportsPerStream: number;
  #stream: Stream | undefined;

  constructor(options: ReportStreamOptions) {
    this.#options = options;
    this.#reportsPerStream = options.interval > REPORT_STREAM_LONGEST_INTERVAL_MS ? 1 : Math.max(1, Math.ceil((options.maxAge ?? REPORT_STREAM_MAX_AGE_MS) / options.interval));
  }

  /** Writes one report (a JSON text on one line, ending in "\n"); returns at once. */
  send(line: string): void {
    let stream = this.#stream;
    if (stream && stream.req.writableLength > 0) {
      stream.drop('the replica has not taken the previous report');
      stream = undefined;
    }
    try {
      stream ??= this.#open();
    } catch (err) {
      // Node throws at once for TLS material it cannot use. Called from a timer: this report is dropped like any other.
      return this.#options.logger.debug('stats report dropped', { controlPlane: this.#options.url.origin, error: String(err) });
    }
    stream.req.write(line);
    // A stream ends with its last report: the next would find it maxAge old. It never idles open for
    // nothing. Counted in reports, not read off a clock: a clock stepped back would keep it open for good.
    if (++stream.sent >= this.#reportsPerStream) this.#end(stream);
  }

  /** Cuts the open stream, if any: the control plane keeps the reports it has whole, and nothing of a cut one. */
  close(): void {
    this.#stream?.drop(undefined);
  }

  #open(): Stream {
    const { url, agent, tls, logger } = this.#options;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: 'POST', agent, ...certificateNow(url, tls ?? {}), headers: { 'content-type': REPORT_STREAM_TYPE } });
    let over = false;
    const stream: Stream = {
      req,
      sent: 0,
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
      // An answered stream takes no more reports: the next goes on a new one.
      if (this.#stream === stream) this.#stream = undefined;
      if (res.statusCode === 204 && req.writableEnded) {
        over = true;
        return void res.resume();
      }
      // Refused (the message names the report and the problem), answered before its end, or not a
      // control plane at all: read a little of why, for at most an interval, and close it.
      const early = res.statusCode === 204 ? ' before its end' : '';
      req.setTimeout(this.#options.interval, () => stream.drop(`report stream answered HTTP ${res.statusCode}${early}, and then nothing for ${this.#options.interval} ms`));
      readSome(res, (text) => stream.drop(`report stream answered HTTP ${res.statusCode}${early}${text ? `: ${messageOf(text)}` : ''}`));
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
  /** Reports written to it. */
  sent: number;
  /** Ends it for good, logging why unless `error` is undefined (closed on purpose); a second call does nothing. */
  readonly drop: (error: string | undefined) => void;
}

/** The first 2 KiB or so of a response, to `done` when it ends, breaks off or reaches that size (an answer that never ends is not read on). */
function readSome(res: IncomingMessage, done: (text: string) => void): void {
  let text = '';
  res.setEncoding('utf8');
  const onData = (chunk: string): void => {
    text += chunk;
    if (text.length >= 2_048) finish();
  };
  const finish = (): void => {
    res.off('data', onData).off('end', finish).off('error', finish);
    done(text);
  };
  res.on('data', onData).once('end', finish).once('error', finish);
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
