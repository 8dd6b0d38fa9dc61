import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request the control plane refuses: the status and a message naming the problem and where. */
export class Refusal extends Error {
  readonly status: number;
  readonly reason: string;
  readonly problems: readonly string[] | undefined;
  readonly headers: Record<string, string>;

  constructor(status: number, reason: string, message: string, extra: { problems?: readonly string[]; headers?: Record<string, string> } = {}) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.problems = extra.problems;
    this.headers = extra.headers ?? {};
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export function sendRefusal(res: ServerResponse, refusal: Refusal): void {
  const error = { status: refusal.status, reason: refusal.reason, message: refusal.message, ...(refusal.problems && { problems: refusal.problems }) };
  // A refused request body may not have been read: close the connection rather than read it.
  sendJson(res, refusal.status, { error }, { ...refusal.headers, ...(res.req.complete ? {} : { connection: 'close' }) });
}

/**
 * Reads a request body, refusing (413) past `limit` bytes without reading the rest. Listens for
 * chunks rather than iterating the stream: a report arrives every few milliseconds at scale, and an
 * async iterator costs a promise per chunk.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Refusal | undefined): void => {
      req.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onCut);
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return settle(tooLarge(limit));
      chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onCut = (): void => settle(new Refusal(400, 'malformed', 'request body: the connection closed before the body was complete'));
    req.on('data', onData).on('end', onEnd).on('error', onCut).on('close', onCut);
  });
}

function tooLarge(limit: number): Refusal {
  return new Refusal(413, 'too-large', `request body: larger than ${limit} bytes`);
}

/** An entity tag without its quotes and weak prefix: `W/"abc"` and `"abc"` are both `abc`. */
export function entityTag(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const tag = header.trim().replace(/^W\//, '');
  return tag.startsWith('"') && tag.endsWith('"') && tag.length >= 2 ? tag.slice(1, -1) : tag;
}
