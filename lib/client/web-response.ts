import type { Readable } from 'node:stream';
import { withCallFields } from '../errors.ts';
import type { MeshResponse } from '../pipeline/types.ts';
import { bodyClosedEarly, bodyError } from '../transport/errors.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A body dropped unread would hold its connection until the body timeout; once nobody can reach its
 * web stream any more, the Node stream under it is destroyed so the socket is freed. The web stream,
 * not the Response, is the target: a caller may keep `res.body` and drop the Response. The Node
 * stream's listeners hold the web stream strongly only while bytes flow into it (its queue has room,
 * or a read waits), so a body being read is never released; a body paused because its queue is full
 * and nobody reads is held weakly, and is released once its stream is unreachable (undici's rule, in
 * reachability terms).
 */
const unreachableBodies = new FinalizationRegistry<Readable>((body) => {
  if (!body.destroyed) body.destroy();
});

/** A body that closed has nothing left to release: the registry lets go of it at once, not after a GC. */
function forgetBody(this: Readable): void {
  unreachableBodies.unregister(this);
}

/** Which call a body belongs to, for the errors its stream raises. */
export interface CallOfBody {
  readonly service: string;
  readonly route: string | undefined;
}

/** A body's call, with the attempts it took (that call has already resolved when the body fails). */
interface BodyOfCall extends CallOfBody {
  readonly attempts: number;
}

const BODY_HIGH_WATER_MARK = 64 * 1024;

type Controller = ReadableStreamDefaultController<Uint8Array>;

/**
 * A web stream over the body's Node stream, with backpressure, whose errors are MeshErrors (a body
 * timeout is MESHFETCH_TIMEOUT) like every other failure of a call. Up to 64 KiB is read ahead, so a
 * small body that nobody reads still ends, and frees its connection (and its bulkhead slot).
 */
function toWebStream(body: Readable, call: BodyOfCall): ReadableStream<Uint8Array> {
  let weak: WeakRef<Controller> | undefined;
  // Set while bytes flow; cleared when the queue is full, so that only the reader holds the stream.
  let strong: Controller | undefined;
  const current = (): Controller | undefined => strong ?? weak?.deref();
  let settled = false;
  const fail = (err: unknown): void => {
    settled = true;
    current()?.error(withCallFields(err, call));
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        weak = new WeakRef(controller);
        strong = controller;
        // A body that failed or ended before this stream existed (a parser error with the headers).
        if (body.errored) return fail(bodyError(body.errored));
        if (body.readableEnded) return controller.close();
        if (body.destroyed) return fail(bodyClosedEarly());
        body.on('data', (chunk: Buffer) => {
          const controller = current();
          if (!controller) return void body.destroy();
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) {
            body.pause();
            strong = undefined;
          }
        });
        body.once('end', () => {
          settled = true;
          current()?.close();
        });
        // An error with no reader waiting still reaches the stream, which keeps it for the next read.
        body.once('error', (err) => fail(bodyError(err)));
        // Destroyed with no error (an abort whose reason is null): the reader must still be told.
        body.once('close', () => settled || fail(bodyClosedEarly()));
      },
      pull(controller) {
        strong = controller;
        body.resume();
      },
      cancel() {
        // The caller let go of it: bytes already on their way are dropped (a closed controller throws
        // on enqueue), and it is no failure of the body (telemetry reads body.errored).
        settled = true;
        weak = strong = undefined;
        body.destroy();
      },
    },
    { highWaterMark: BODY_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
  );
  unreachableBodies.register(stream, body, body);
  body.once('close', forgetBody);
  return stream;
}

/** Response headers, immutable as those of a fetched Response are (its guard is "immutable"). */
class ResponseHeaders extends Headers {
  override append(): void {
    throw new TypeError('immutable');
  }

  override set(): void {
    throw new TypeError('immutable');
  }

  override delete(): void {
    throw new TypeError('immutable');
  }
}

function headerPairs(record: MeshResponse['headers']): [string, string][] {
  const pairs: [string, string][] = [];
  for (const name of Object.keys(record)) {
    const value = record[name];
    if (typeof value === 'string') pairs.push([name, value]);
    else if (value !== undefined) for (const item of value) pairs.push([name, item]);
  }
  return pairs;
}

/** What a fetched Response reports about itself that `new Response()` cannot be told. */
interface FetchedMeta {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: ResponseHeaders;
}

/** A reason phrase the Response constructor accepts (RFC 9110 reason-phrase); anything else is dropped. */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * A standard Response (instanceof Response holds) that reports what the platform fetch reports: the
 * status as sent even outside 200–599 (new Response() throws RangeError there), the reason phrase,
 * url and redirected (kept by clone()), immutable headers and type "basic".
 */
class FetchedResponse extends Response {
  readonly #meta: FetchedMeta;

  constructor(body: ReadableStream<Uint8Array> | null, meta: FetchedMeta) {
    const inRange = meta.status >= 200 && meta.status <= 599;
    super(body, {
      status: inRange ? meta.status : 200,
      statusText: REASON_PHRASE.test(meta.statusText) ? meta.statusText : '',
      headers: meta.headers,
    });
    this.#meta = meta;
  }

  /** The Response constructor reads some getters before #meta exists; they answer as Response then. */
  static #metaOf(response: FetchedResponse): FetchedMeta | undefined {
    return #meta in response ? response.#meta : undefined;
  }

  override get status(): number {
    return FetchedResponse.#metaOf(this)?.status ?? super.status;
  }

  override get ok(): boolean {
    const { status } = this;
    return status >= 200 && status <= 299;
  }

  override get url(): string {
    return FetchedResponse.#metaOf(this)?.url ?? super.url;
  }

  override get redirected(): boolean {
    return FetchedResponse.#metaOf(this)?.redirected ?? super.redirected;
  }

  override get type(): ResponseType {
    return 'basic';
  }

  override get headers(): Headers {
    return FetchedResponse.#metaOf(this)?.headers ?? super.headers;
  }

  override clone(): Response {
    return new FetchedResponse(super.clone().body, this.#meta);
  }
}

/** Wraps a pipeline response in a standard WHATWG Response that streams the body. */
export function toWebResponse(res: MeshResponse, method: string, url: string, call: CallOfBody): Response {
  const nullBody = method === 'HEAD' || NULL_BODY_STATUS.has(res.status);
  if (nullBody) res.body.resume();
  const body = nullBody ? null : toWebStream(res.body, { service: call.service, route: call.route, attempts: res.attempts ?? 1 });
  return new FetchedResponse(body, {
    status: res.status,
    statusText: res.statusText ?? '',
    url: res.url ?? url,
    redirected: res.redirected ?? false,
    headers: new ResponseHeaders(headerPairs(res.headers)),
  });
}
