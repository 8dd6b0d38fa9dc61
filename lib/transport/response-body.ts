import type { Readable } from 'node:stream';
import { ErrorCode, MeshError } from '../errors.ts';
import { bodyClosedEarly, bodyError } from './errors.ts';

/** Reads a whole body into one Buffer; a body larger than `limit` bytes is destroyed and rejected. */
export function readBytes(body: Readable, limit = Infinity): Promise<Buffer> {
  // A body that failed before anyone listened (an error with the headers) keeps its error.
  if (body.errored) return Promise.reject(bodyError(body.errored));
  if (body.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (body.destroyed) return Promise.reject(bodyClosedEarly());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > limit) {
        body.destroy(bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    body.on('data', onData);
    let settled = false;
    body.once('error', (err) => {
      settled = true;
      reject(bodyError(err));
    });
    body.once('end', () => {
      settled = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
    });
    // Destroyed with no error (an abort whose reason is null): the read must still end. (An error is
    // made only then: building one on every call would cost more than the rest of the read.)
    body.once('close', () => settled || reject(bodyClosedEarly()));
  });
}

export function bodyTooLarge(limit: number): MeshError {
  return new MeshError(ErrorCode.BodyTooLarge, `response body is larger than ${limit} bytes (the policy's jsonBodyLimit)`);
}

export async function readText(body: Readable, limit?: number): Promise<string> {
  return (await readBytes(body, limit)).toString('utf8');
}

/** Parses a JSON body of at most `limit` bytes; an empty body is undefined. */
export async function readJson(body: Readable, limit = Infinity): Promise<unknown> {
  const bytes = await readBytes(body, limit);
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new MeshError(ErrorCode.Body, `response body is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

const ERROR_BODY_LIMIT = 1 << 20;

/** The body of an error response, for HttpStatusError: parsed JSON when it is JSON, else the text. */
export async function readErrorBody(body: Readable, contentType: unknown): Promise<unknown> {
  const text = await readText(body, ERROR_BODY_LIMIT).catch(() => undefined);
  if (text === undefined || text === '' || !/json/i.test(String(contentType ?? ''))) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
