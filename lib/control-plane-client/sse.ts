export interface ServerSentEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * Splits a text/event-stream into events (the WHATWG rules this client needs: `event`, `id`, `data`,
 * comments). Bounded: a stream that sends more than `maxEventBytes` without ending an event throws.
 */
export class SseParser {
  readonly #onEvent: (event: ServerSentEvent) => void;
  readonly #maxEventBytes: number;
  #buffer = '';
  #event = '';
  #id: string | undefined;
  #data: string[] = [];

  constructor(onEvent: (event: ServerSentEvent) => void, maxEventBytes = 4 << 20) {
    this.#onEvent = onEvent;
    this.#maxEventBytes = maxEventBytes;
  }

  feed(chunk: string): void {
    this.#buffer += chunk;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) !== -1) {
      const line = this.#buffer.slice(0, newline).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(newline + 1);
      this.#line(line);
    }
    if (this.#buffer.length > this.#maxEventBytes) throw new Error(`event stream: an event is larger than ${this.#maxEventBytes} bytes`);
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) this.#onEvent({ event: this.#event || 'message', id: this.#id, data: this.#data.join('\n') });
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'event') this.#event = value;
    else if (name === 'data') this.#data.push(value);
    else if (name === 'id') this.#id = value;
  }
}
