import type { ServerResponse } from 'node:http';

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

  /** The same refusal, its message placed: `within('report 3 on this stream')`. */
  within(where: string): Refusal {
    return new Refusal(this.status, this.reason, `${where}: ${this.message}`, { ...(this.problems && { problems: this.problems }), headers: this.headers });
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

/** An entity tag without its quotes and weak prefix: `W/"abc"` and `"abc"` are both `abc`. */
export function entityTag(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const tag = header.trim().replace(/^W\//, '');
  return tag.startsWith('"') && tag.endsWith('"') && tag.length >= 2 ? tag.slice(1, -1) : tag;
}
