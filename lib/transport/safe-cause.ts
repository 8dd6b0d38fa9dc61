/**
 * What a library error may carry into a MeshError's `cause`. got's RequestError holds the request's
 * options (headers with authorization and cookies, the URL with its query), its agent and sockets;
 * util.inspect(err) and console.error(err) would print them all. A cause is therefore a copy that
 * keeps only the fields that say what went wrong at the network level, never the request.
 */
const SAFE_FIELDS = ['code', 'errno', 'syscall', 'address', 'port', 'event'] as const;
const MAX_DEPTH = 4;

/** Node puts a header's value in some messages (`Invalid value "…" for header "x"`); URLs can carry secrets. */
export function scrubMessage(message: string): string {
  return message
    .replace(/Invalid value "[\s\S]*?" for header/g, 'Invalid value for header')
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"']*@/gi, '$1')
    .replace(/(\/[^\s?"']*)\?[^\s"']*/g, '$1?…');
}

class TransportCause extends Error {
  readonly #name: string;

  constructor(name: string, message: string) {
    super(message);
    this.#name = name;
  }

  override get name(): string {
    return this.#name;
  }
}

/** A copy of `err` (and its causes) with nothing of the request in it; non-errors become their type name. */
export function safeCause(err: unknown, depth = 0): Error {
  if (!(err instanceof Error)) return new TransportCause('Error', `a non-error was thrown: ${typeof err}`);
  const copy = new TransportCause(err.name, scrubMessage(err.message));
  const fields = copy as unknown as Record<string, unknown>;
  for (const field of SAFE_FIELDS) {
    const value = (err as unknown as Record<string, unknown>)[field];
    if (typeof value === 'string' || typeof value === 'number') fields[field] = value;
  }
  // The library's frames say where it failed; the first line (the message) is rebuilt scrubbed.
  const frames = err.stack?.split('\n').filter((line) => line.startsWith('    at ')) ?? [];
  copy.stack = [`${copy.name}: ${copy.message}`, ...frames].join('\n');
  if (err.cause !== undefined && depth < MAX_DEPTH) {
    Object.defineProperty(copy, 'cause', { value: safeCause(err.cause, depth + 1), configurable: true, writable: true });
  }
  return copy;
}
