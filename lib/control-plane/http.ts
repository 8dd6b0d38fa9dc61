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

/** Reads a request body, refusing (413) past `limit` bytes without reading the rest. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof Refusal) throw err;
    throw new Refusal(400, 'malformed', 'request body: the connection closed before the body was complete');
  }
  return Buffer.concat(chunks, size);
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
