import type { GiveUpReason } from './events.ts';

/** Stable error codes. Callers branch on `err.code`, never on messages. */
export const ErrorCode = {
  Timeout: 'MESHFETCH_TIMEOUT',
  Connect: 'MESHFETCH_CONNECT',
  Reset: 'MESHFETCH_RESET',
  Tls: 'MESHFETCH_TLS',
  HttpStatus: 'MESHFETCH_HTTP_STATUS',
  CircuitOpen: 'MESHFETCH_CIRCUIT_OPEN',
  RetryBudgetExhausted: 'MESHFETCH_RETRY_BUDGET_EXHAUSTED',
  RateLimited: 'MESHFETCH_RATE_LIMITED',
  ConcurrencyLimit: 'MESHFETCH_CONCURRENCY_LIMIT',
  Config: 'MESHFETCH_CONFIG',
  Body: 'MESHFETCH_BODY',
  BodyTooLarge: 'MESHFETCH_BODY_TOO_LARGE',
  Redirect: 'MESHFETCH_REDIRECT',
  Closed: 'MESHFETCH_CLOSED',
  Conflict: 'MESHFETCH_CONFLICT',
  Decode: 'MESHFETCH_DECODE',
  StoreUnavailable: 'MESHFETCH_STORE_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface MeshErrorOptions {
  cause?: unknown;
  /** Whether repeating the same request may succeed (connection-level failures, timeouts, 429/502/503/504). */
  retryable?: boolean;
  service?: string;
  route?: string;
  /** How many attempts were made before this error reached the caller. */
  attempts?: number;
  /** Why no further attempt was made, when the retry layer stopped (e.g. 'budget'). */
  gaveUp?: GiveUpReason;
}

/** The one base class of every error meshfetch raises. */
export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  service: string | undefined;
  route: string | undefined;
  attempts: number | undefined;
  /** Why no further attempt was made: 'budget' when the retry budget was spent, 'attempts', 'deadline', … */
  gaveUp: GiveUpReason | undefined;

  constructor(code: ErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.service = options.service;
    this.route = options.route;
    this.attempts = options.attempts;
    this.gaveUp = options.gaveUp;
  }

  override get name(): string {
    return 'MeshError';
  }
}

export interface HttpStatusErrorOptions extends MeshErrorOptions {
  method?: string;
  /** The request path; its query is left out of the message. */
  path?: string;
}

/** "payments GET /charges/1 (route getCharge)": what was called, without the query. */
function callDescription(options: HttpStatusErrorOptions): string {
  const path = options.path === undefined ? undefined : options.path.split('?', 1)[0];
  const request = [options.service, options.method, path].filter((part) => part !== undefined).join(' ');
  return request + (options.route ? ` (route ${options.route})` : '');
}

/** A non-2xx answer to a JSON helper or typed route call. `body` is the parsed JSON, or the text. */
export class HttpStatusError extends MeshError {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;

  constructor(status: number, body: unknown, headers: HttpStatusError['headers'], options: HttpStatusErrorOptions = {}) {
    const where = callDescription(options);
    super(ErrorCode.HttpStatus, `HTTP ${status}${where ? ` from ${where}` : ''}`, {
      retryable: status === 429 || status === 502 || status === 503 || status === 504,
      ...options,
    });
    this.status = status;
    this.body = body;
    this.headers = headers;
  }

  override get name(): string {
    return 'HttpStatusError';
  }
}

/**
 * Fills in which call an error belongs to, where the layer that raised it could not know (a body read,
 * a decoder). Fields already set are kept.
 */
export function withCallFields<E>(err: E, fields: Pick<MeshErrorOptions, 'service' | 'route' | 'attempts'>): E {
  if (err instanceof MeshError) {
    err.service ??= fields.service;
    err.route ??= fields.route;
    err.attempts ??= fields.attempts;
  }
  return err;
}

export function configError(message: string, cause?: unknown): MeshError {
  return new MeshError(ErrorCode.Config, message, { cause });
}

export function isMeshError(value: unknown, code?: ErrorCode): value is MeshError {
  return value instanceof MeshError && (code === undefined || value.code === code);
}

/**
 * A MeshError without a stack trace, for rejections made in bulk when a destination is failing or
 * overloaded (an open circuit, a full bulkhead, an empty token bucket): capturing the async stack
 * is most of their cost (~10 µs), and the message already says where and why.
 */
export function stacklessError(code: ErrorCode, message: string, options: MeshErrorOptions): MeshError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new MeshError(code, message, options);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
