import type { IncomingMessage } from 'node:http';
import { Refusal } from './http.ts';

/** A request body not complete this long after its headers is refused (408): a client dribbling bytes holds nothing for good. */
export const BODY_DEADLINE_MS = 30_000;

const LF = 10;
const CR = 13;

interface Consumer {
  /** Takes each chunk as it arrives, returning whether it completed a part (which restarts a silence limit); a Refusal thrown here refuses the request. */
  readonly chunk: (chunk: Buffer) => boolean;
  readonly end: () => void;
  /** A connection that closes before the end is refused, unless the body is a stream of whole parts, where it only ends it. */
  readonly cutEndsIt: boolean;
  /**
   * The timer: a deadline for the whole body, or a limit on silence that each completed part
   * restarts. Not each chunk: a sender dribbling a byte now and then would hold the stream for good.
   */
  readonly timeout: { readonly ms: number; readonly restartOnPart: boolean; readonly refusal: () => Refusal };
}

/**
 * Feeds a request body to `consumer` chunk by chunk. Listens for chunks rather than iterating the
 * stream: a report arrives every few milliseconds at scale, and an async iterator costs a promise per chunk.
 */
function consume(req: IncomingMessage, consumer: Consumer): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(consumer.timeout.refusal()), consumer.timeout.ms);
    timer.unref();
    const settle = (error: unknown): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onCut);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      try {
        if (consumer.chunk(chunk) && consumer.timeout.restartOnPart) timer.refresh();
      } catch (err) {
        settle(err);
      }
    };
    const onEnd = (): void => {
      try {
        consumer.end();
        settle(undefined);
      } catch (err) {
        settle(err);
      }
    };
    const onCut = (): void => settle(consumer.cutEndsIt ? undefined : new Refusal(400, 'malformed', 'request body: the connection closed before the body was complete'));
    req.on('data', onData).on('end', onEnd).on('error', onCut).on('close', onCut);
  });
}

/** Reads a request body, refusing (413) past `limit` bytes without reading the rest, and (408) one not complete within BODY_DEADLINE_MS. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length']) > limit) throw tooLarge('request body', limit);
  const chunks: Buffer[] = [];
  let size = 0;
  await consume(req, {
    chunk(chunk) {
      size += chunk.length;
      if (size > limit) throw tooLarge('request body', limit);
      chunks.push(chunk);
      return false;
    },
    end() {},
    cutEndsIt: false,
    timeout: { ms: BODY_DEADLINE_MS, restartOnPart: false, refusal: () => new Refusal(408, 'timeout', `request body: not complete within ${BODY_DEADLINE_MS / 1_000} s`) },
  });
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

export interface LineStreamOptions {
  /** The most bytes a line may have; a longer one is refused (413) as soon as it passes the limit. */
  readonly limit: number;
  /** A body that completes no line this long (since its start or its last line) is refused (408): bytes that end no line do not count. */
  readonly idleMs: number;
  /** What one line is, in messages: `report` gives "report 3 on this stream: …". */
  readonly noun: string;
}

/**
 * Reads a body of lines (NDJSON: each line one JSON text, ending in "\n" or "\r\n"), handing each to `take`
 * as soon as it is complete, so a body may stay open for as long as its sender has lines to send.
 * A Refusal thrown by `take` is refused naming the line; the lines before it were taken. Resolves
 * with the number of lines taken when the body ends (a last line without "\n" counts), or when the
 * connection closes first: the sender went away, and the line it was writing is dropped.
 */
export async function readLines(req: IncomingMessage, options: LineStreamOptions, take: (line: string) => void): Promise<number> {
  const { limit, noun } = options;
  let lines = 0;
  /** The start of a line that has not ended yet, across chunks. */
  let partial: Buffer[] = [];
  let partialSize = 0;
  const takeLine = (text: string): void => {
    if (text.length === 0) return;
    lines++;
    try {
      take(text);
    } catch (err) {
      throw err instanceof Refusal ? err.within(`${noun} ${lines} on this stream`) : err;
    }
  };
  /** Whether the start of a line kept so far ends in "\r": with "\n" after it, that "\r" is the line's end, not in it. */
  const partialEndsInCr = (): boolean => {
    const last = partial.at(-1);
    return last !== undefined && last[last.length - 1] === CR;
  };
  await consume(req, {
    chunk(chunk) {
      const before = lines;
      let start = 0;
      for (let newline = chunk.indexOf(LF); newline !== -1; newline = chunk.indexOf(LF, start)) {
        // A line ends in "\n" or "\r\n"; the "\r" is not counted against the limit.
        const cr = newline > start ? chunk[newline - 1] === CR : partialEndsInCr();
        const size = partialSize + newline - start - (cr ? 1 : 0);
        if (size > limit) throw tooLarge(`${noun} ${lines + 1} on this stream`, limit);
        if (partialSize === 0) takeLine(chunk.toString('utf8', start, start + size));
        else {
          partial.push(chunk.subarray(start, newline));
          const line = Buffer.concat(partial, size).toString('utf8');
          partial = [];
          partialSize = 0;
          takeLine(line);
        }
        start = newline + 1;
      }
      if (start === chunk.length) return lines > before;
      partialSize += chunk.length - start;
      // One byte past the limit may be the "\r" of a "\r\n" still to come.
      if (partialSize > limit + (chunk[chunk.length - 1] === CR ? 1 : 0)) throw tooLarge(`${noun} ${lines + 1} on this stream`, limit);
      partial.push(start === 0 ? chunk : chunk.subarray(start));
      return lines > before;
    },
    end() {
      if (partialSize > 0) takeLine(Buffer.concat(partial, partialSize - (partialEndsInCr() ? 1 : 0)).toString('utf8'));
    },
    cutEndsIt: true,
    timeout: { ms: options.idleMs, restartOnPart: true, refusal: () => new Refusal(408, 'idle', `${noun} stream: no ${noun} for ${options.idleMs / 1_000} s`) },
  });
  return lines;
}

function tooLarge(what: string, limit: number): Refusal {
  return new Refusal(413, 'too-large', `${what}: larger than ${limit} bytes`);
}
