import type { Readable } from 'node:stream';
import { withCallFields } from '../errors.ts';
import type { MeshResponse } from '../pipeline/types.ts';
import { bodyClosedEarly, bodyError } from '../transport/errors.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A body dropped unread would hold its connection until the body timeout; once nobody can reach its
 * web stream any more, the Node stream under it is destroyed so the socket is freed. The web stream,
 * not the Response, is the target: a caller may keep `res.body` and drop the Response. While a read
 * is pending, the Node stream's listener holds the web stream (see pullChunk), so a body being read is
 * never released; only an idle, unreachable one is (undici's rule, in reachability terms).
 */
const unreachableBodies = new FinalizationRegistry<Readable>((body) => {
  if (!body.destroyed) body.destroy();
});

/**
 * An error with no reader waiting must not become an uncaught 'error' event; the stream keeps it
 * (readable.errored) for the next pull. A shared function, so the listener holds nothing of the call.
 */
function keepForNextPull(): void {}

/**
 * Hands the next chunk to the web stream. Called only when a reader asked for one (highWaterMark 0),
 * and only while it waits do listeners on the Node stream hold the controller: between reads the web
 * stream is reachable from its Response or its reader alone, so it can be collected when they are.
 */
function pullChunk(body: Readable, controller: ReadableStreamDefaultController<Uint8Array>, call: BodyOfCall): Promise<void> | undefined {
  const chunk = body.read() as Buffer | null;
  if (chunk !== null) return void controller.enqueue(chunk);
  if (body.readableEnded) return void controller.close();
  if (body.errored) return void controller.error(withCallFields(bodyError(body.errored), call));
  // Destroyed with no error (an abort whose reason is null): the reader must still be told.
  if (body.destroyed) return void controller.error(withCallFields(bodyClosedEarly(), call));
  return new Promise<void>((resolve) => {
    const retry = (): void => {
      body.off('readable', retry).off('end', retry).off('error', retry).off('close', retry);
      resolve(pullChunk(body, controller, call));
    };
    body.on('readable', retry).on('end', retry).on('error', retry).on('close', retry);
  });
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

/**
 * A web stream over the body's Node stream, with backpressure, whose errors are MeshErrors (a body
 * timeout is MESHFETCH_TIMEOUT) like every other failure of a call.
 */
function toWebStream(body: Readable, call: BodyOfCall): ReadableStream<Uint8Array> {
  body.on('error', keepForNextPull);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull: (controller) => pullChunk(body, controller, call),
      cancel(reason) {
        body.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
  unreachableBodies.register(stream, body);
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
