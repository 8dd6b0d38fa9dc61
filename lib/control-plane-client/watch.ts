import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TlsPem } from '../tls/material.ts';
import { SseParser } from './sse.ts';
import type { ServerSentEvent } from './sse.ts';

/** The header in which the control plane says how often it sends a heartbeat. */
const HEARTBEAT_HEADER = 'x-meshfetch-heartbeat';

export interface WatchHandlers {
  /** The stream is open (status 200). */
  onOpen(): void;
  onEvent(event: ServerSentEvent): void;
  /** The stream ended, failed, or went silent; called once. */
  onClose(reason: Error): void;
}

export interface WatchOptions {
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly tls: TlsPem;
  /** Silence after which the stream counts as dead (default: 3 heartbeats as announced by the server, plus 1 s). */
  readonly silenceTimeout: number | undefined;
}

/**
 * One watch stream to the control plane. A single timer, re-armed by every byte received, tells a
 * silent stream (a half-open connection, a stalled proxy) from a quiet one: heartbeats keep it armed.
 * Returns the function that ends the stream.
 */
export function openWatch(options: WatchOptions, handlers: WatchHandlers): () => void {
  let request: ClientRequest | undefined;
  let silence: NodeJS.Timeout | undefined;
  let done = false;
  const finish = (reason: Error): void => {
    if (done) return;
    done = true;
    clearTimeout(silence);
    request?.destroy();
    handlers.onClose(reason);
  };

  const send = options.url.protocol === 'https:' ? httpsRequest : httpRequest;
  request = send(options.url, {
    method: 'GET',
    agent: false,
    headers: { accept: 'text/event-stream', ...options.headers },
    ...(options.url.protocol === 'https:' && { cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca }),
  });
  request.on('error', (err) => finish(err));
  // Until the response starts, the same timer bounds the connect and the wait for headers.
  const untilHeaders = options.silenceTimeout ?? 10_000;
  silence = setTimeout(() => finish(new Error(`watch not answered within ${untilHeaders}ms`)), untilHeaders);
  request.on('response', (res: IncomingMessage) => {
    clearTimeout(silence);
    if (res.statusCode !== 200) {
      res.resume();
      finish(new Error(`watch answered HTTP ${res.statusCode}`));
      return;
    }
    const heartbeat = Number(res.headers[HEARTBEAT_HEADER]);
    const timeout = options.silenceTimeout ?? (Number.isFinite(heartbeat) && heartbeat > 0 ? heartbeat * 3 + 1_000 : 60_000);
    silence = setTimeout(() => finish(new Error(`watch stream silent for ${timeout}ms`)), timeout);
    const parser = new SseParser((event) => handlers.onEvent(event));
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      silence?.refresh();
      try {
        parser.feed(chunk);
      } catch (err) {
        finish(err as Error);
      }
    });
    res.on('end', () => finish(new Error('watch stream ended')));
    res.on('error', (err) => finish(err));
    handlers.onOpen();
  });
  request.end();
  return () => finish(new Error('closed'));
}
