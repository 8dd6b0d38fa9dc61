import { Readable } from 'node:stream';
import type { MeshResponse } from '../pipeline/types.ts';
import { toHeaders } from './headers.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A Response dropped unread would hold its connection until the body timeout; when it is garbage
 * collected, its stream is destroyed so the socket is freed, as undici's own fetch does.
 */
const unreadBodies = new FinalizationRegistry<Readable>((body) => {
  if (!body.readableEnded) body.destroy();
});

/** Wraps a pipeline response in a standard WHATWG Response that streams the body. */
export function toWebResponse(res: MeshResponse, method: string, url: string): Response {
  const nullBody = method === 'HEAD' || NULL_BODY_STATUS.has(res.status);
  if (nullBody) res.body.resume();
  const body = nullBody ? null : (Readable.toWeb(res.body) as ReadableStream<Uint8Array>);
  const response = new Response(body, { status: res.status, headers: toHeaders(res.headers) });
  Object.defineProperty(response, 'url', { value: url });
  if (!nullBody) unreadBodies.register(response, res.body);
  return response;
}
