import type { Readable } from 'node:stream';
import { withCallFields } from '../errors.ts';
import type { MeshResponse } from '../pipeline/types.ts';
import { bodyClosedEarly, bodyError } from '../transport/errors.ts';
import { toHeaders } from './headers.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A Response dropped unread would hold its connection until the body timeout; when it is garbage
 * collected, its stream is destroyed so the socket is freed, as undici's own fetch does.
 */
const unreadBodies = new FinalizationRegistry<Readable>((body) => {
  if (!body.readableEnded) body.destroy();
});

const BODY_HIGH_WATER_MARK = 64 * 1024;

/** A body's failure, told which call it belonged to (that call has already resolved). */
function ofCall(err: unknown, res: MeshResponse, call: CallOfBody): unknown {
  return withCallFields(err, { service: call.service, route: call.route, attempts: res.attempts ?? 1 });
}

/**
 * A web stream over the body's Node stream, with backpressure, whose errors are MeshErrors (a body
 * timeout is MESHFETCH_TIMEOUT) like every other failure of a call.
 */
function toWebStream(res: MeshResponse, call: CallOfBody): ReadableStream<Uint8Array> {
  const { body } = res;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        body.on('data', (chunk: Buffer) => {
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) body.pause();
        });
        let settled = false;
        body.once('end', () => {
          settled = true;
          controller.close();
        });
        body.once('error', (err) => {
          settled = true;
          controller.error(ofCall(bodyError(err), res, call));
        });
        // Destroyed with no error (an abort whose reason is null): the reader must still be told.
        body.once('close', () => settled || controller.error(ofCall(bodyClosedEarly(), res, call)));
      },
      pull() {
        body.resume();
      },
      cancel(reason) {
        body.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: BODY_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
  );
}

/** Which call a body belongs to, for the errors its stream raises. */
export interface CallOfBody {
  readonly service: string;
  readonly route: string | undefined;
}

/** Wraps a pipeline response in a standard WHATWG Response that streams the body. */
export function toWebResponse(res: MeshResponse, method: string, url: string, call: CallOfBody): Response {
  const nullBody = method === 'HEAD' || NULL_BODY_STATUS.has(res.status);
  if (nullBody) res.body.resume();
  const body = nullBody ? null : toWebStream(res, call);
  const response = new Response(body, { status: res.status, headers: toHeaders(res.headers) });
  Object.defineProperty(response, 'url', { value: url });
  if (!nullBody) unreadBodies.register(response, res.body);
  return response;
}
