import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { ErrorCode, MeshError } from '../errors.ts';
import type { HeaderRecord, RequestBody, StreamBody } from '../pipeline/types.ts';

/*
 * Turns any body fetch() accepts (plus Node streams and async iterables) into a RequestBody, the way
 * fetch's "extract a body" does: strings, bytes and URLSearchParams become bytes that can be sent any
 * number of times; Blob and FormData become replayable streams (they can be read again); streams and
 * async iterables become one-shot streams that refuse to be opened twice, so a retry can never send a
 * half-read or empty body.
 */

function bodyRejected(message: string): MeshError {
  return new MeshError(ErrorCode.Body, message, { retryable: false });
}

function hasHeader(headers: HeaderRecord, name: string): boolean {
  for (const key in headers) if (key.toLowerCase() === name) return true;
  return false;
}

/** Sets content-type and content-length unless the caller set them (or chose chunked encoding). */
function describe(headers: HeaderRecord, type: string | undefined, length: number | undefined): void {
  if (type && !hasHeader(headers, 'content-type')) headers['content-type'] = type;
  if (length !== undefined && !hasHeader(headers, 'content-length') && !hasHeader(headers, 'transfer-encoding')) {
    headers['content-length'] = String(length);
  }
}

function replayable(length: number | undefined, open: () => Readable): StreamBody {
  return { replayable: true, length, open };
}

function oneShot(what: string, open: () => Readable): StreamBody {
  let opened = false;
  return {
    replayable: false,
    length: undefined,
    open() {
      if (opened) throw bodyRejected(`the request body (${what}) is a stream that was already sent; it cannot be sent again`);
      opened = true;
      return open();
    },
  };
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object' && typeof value !== 'function') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : Object.prototype.toString.call(value).slice(8, -1);
}

function isFormData(value: object): value is FormData {
  // The global FormData and undici's own (a different class) both tag themselves.
  return value instanceof FormData || Object.prototype.toString.call(value) === '[object FormData]';
}

function isWebStream(value: object): value is ReadableStream<unknown> {
  return value instanceof ReadableStream || typeof (value as { getReader?: unknown }).getReader === 'function';
}

function isAsyncIterable(value: object): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

function webToNode(stream: ReadableStream<unknown>): Readable {
  return Readable.fromWeb(stream as NodeWebReadableStream<unknown>, { objectMode: false });
}

/** Async iterables may yield bytes or strings; anything else fails the upload with a body error. */
async function* bytesOf(iterable: AsyncIterable<unknown>): AsyncGenerator<Uint8Array | string> {
  for await (const chunk of iterable) {
    if (chunk instanceof Uint8Array || typeof chunk === 'string') yield chunk;
    else if (chunk instanceof ArrayBuffer) yield new Uint8Array(chunk);
    else if (ArrayBuffer.isView(chunk)) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw bodyRejected(`a request body iterable yielded a ${typeName(chunk)}; only bytes and strings can be sent`);
  }
}

// The multipart/form-data encoding algorithm, as undici's fetch runs it. It is written out here
// (rather than reusing `new Response(formData)`) because Node's fetch picks a new random boundary on
// every encoding, which would not match a content-type header sent by a replay.
const escapeName = (s: string): string => s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
const normalizeLinefeeds = (s: string): string => s.replace(/\r?\n|\r/g, '\r\n');
const CRLF = Buffer.from('\r\n');

function formDataBody(form: FormData, headers: HeaderRecord): StreamBody {
  const boundary = `----meshfetch-${randomBytes(12).toString('hex')}`;
  const prefix = `--${boundary}\r\nContent-Disposition: form-data`;
  // The entry list is read now, as fetch does: later changes to the FormData are not sent.
  const parts: (Buffer | Blob)[] = [];
  let length = 0;
  for (const [name, value] of form as unknown as Iterable<[string, string | File]>) {
    if (typeof value === 'string') {
      const part = Buffer.from(`${prefix}; name="${escapeName(normalizeLinefeeds(name))}"\r\n\r\n${normalizeLinefeeds(value)}\r\n`);
      parts.push(part);
      length += part.length;
    } else {
      const filename = value.name ? `; filename="${escapeName(value.name)}"` : '';
      const part = Buffer.from(
        `${prefix}; name="${escapeName(normalizeLinefeeds(name))}"${filename}\r\n` +
          `Content-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`,
      );
      parts.push(part, value, CRLF);
      length += part.length + value.size + CRLF.length;
    }
  }
  const end = Buffer.from(`--${boundary}--\r\n`);
  parts.push(end);
  length += end.length;
  describe(headers, `multipart/form-data; boundary=${boundary}`, length);
  async function* encode(): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      if (part instanceof Blob) yield* part.stream() as unknown as AsyncIterable<Uint8Array>;
      else yield part;
    }
  }
  return replayable(length, () => Readable.from(encode(), { objectMode: false }));
}

/**
 * A fetch body as a RequestBody, filling content-type (and content-length when it is known) into
 * `headers` (lower-case keys) unless the caller set them. null and undefined are no body. Values
 * fetch cannot send throw a MeshError with code MESHFETCH_BODY naming the type.
 */
export function toRequestBody(body: unknown, headers: HeaderRecord): RequestBody | null {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') {
    describe(headers, 'text/plain;charset=UTF-8', Buffer.byteLength(body));
    return body;
  }
  if (typeof body !== 'object') throw bodyRejected(`cannot send a request body of type ${typeName(body)}`);
  if (body instanceof Uint8Array) {
    // Buffer included. Sent as it is, not copied: the caller hands the bytes over with the call.
    describe(headers, undefined, body.byteLength);
    return body;
  }
  if (body instanceof ArrayBuffer || body instanceof SharedArrayBuffer) {
    const bytes = new Uint8Array(body.slice(0));
    describe(headers, undefined, bytes.byteLength);
    return bytes;
  }
  if (ArrayBuffer.isView(body)) {
    const bytes = new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    describe(headers, undefined, bytes.byteLength);
    return bytes;
  }
  if (body instanceof URLSearchParams) {
    const text = body.toString();
    describe(headers, 'application/x-www-form-urlencoded;charset=UTF-8', Buffer.byteLength(text));
    return text;
  }
  if (isFormData(body)) return formDataBody(body, headers);
  if (body instanceof Blob) {
    const blob = body;
    describe(headers, blob.type || undefined, blob.size);
    return replayable(blob.size, () => webToNode(blob.stream()));
  }
  if (body instanceof Readable) {
    if (body.destroyed || body.readableEnded) throw bodyRejected('a request body stream that has ended or been destroyed cannot be sent');
    return oneShot('Readable', () => body);
  }
  if (isWebStream(body)) {
    if (body.locked) throw bodyRejected('a locked ReadableStream cannot be sent as a request body');
    return oneShot('ReadableStream', () => webToNode(body));
  }
  if (isAsyncIterable(body)) {
    return oneShot(typeName(body), () => Readable.from(bytesOf(body), { objectMode: false }));
  }
  throw bodyRejected(`cannot send a request body of type ${typeName(body)}`);
}

/** What a transport sends: strings and bytes as they are, a StreamBody opened (once, for a one-shot). */
export function openBody(body: RequestBody | null): string | Uint8Array | Readable | null {
  return body === null || typeof body === 'string' || body instanceof Uint8Array ? body : body.open();
}
