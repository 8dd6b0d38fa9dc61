import pRetry from 'p-retry';
import { ErrorCode, isMeshError, MeshError } from '../errors.ts';
import type { GiveUpReason, MeshEvents } from '../events.ts';
import type { LayerDeps } from '../pipeline/layers.ts';
import type { CallContext, Handler, Middleware, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import { DEFAULT_POLICY } from '../policy/defaults.ts';
import type { RetryPolicy } from '../policy/types.ts';
import { fullJitterBackoff } from './backoff.ts';
import { hedgedAttempt } from './hedge.ts';
import { LatencyTracker } from './latency.ts';
import { retryAfterMs } from './retry-after.ts';
import { RetryBudgets } from './retry-budget.ts';
import type { RetryBudget } from './retry-budget.ts';
import { canReplay, delay, isRetryableFailure, mayRepeat, mayRunConcurrently, retryStatuses } from './retry-rules.ts';


/** A retry shorter than this before the deadline is not worth starting. */
const MIN_ATTEMPT_MS = 10;

type Decision = { retry: true; delay: number } | { retry: false; why: GiveUpReason };

/** One call that may be retried, and what retrying it needs. */
interface RetryCall {
  readonly attempt: Handler;
  readonly req: MeshRequest;
  readonly ctx: CallContext;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget;
  /** The call's number for this request's first attempt: 1, or after a redirect hop the attempt after the hop's. */
  readonly first: number;
  readonly events: MeshEvents;
  readonly random: () => number;
  /** Safe to send twice; when false, only a connect failure (a request never sent) is retried. */
  readonly safe: boolean;
}

/** Thrown inside the p-retry loop to retry a response whose status is retryable; never escapes it. */
class RetryableStatus extends Error {
  readonly delay: number;
  constructor(status: number, delayMs: number) {
    super(`retryable status ${status}`);
    this.delay = delayMs;
  }
}

/**
 * Retries with exponential backoff and full jitter (p-retry runs the loop), within the deadline and
 * the destination's retry budget, only for requests that are safe to send again; hedges idempotent
 * routes that opt in. The caller gets the last answer, or the last real failure with its attempt count.
 * A request after a redirect hop (ctx.attempt above 1 on entry) is the same call: it deposits nothing
 * in the budget and numbers its attempts on from the hop's, with retries of its own.
 */
export function retryLayer(deps: LayerDeps): Middleware {
  const { random, events } = deps;
  const budgets = new RetryBudgets(deps);
  const hedgeDeps = { events, latency: new LatencyTracker(deps) };
  return (next) => {
    return async (req, ctx) => {
      const { retry, hedge } = ctx.policy;
      if (retry === null && hedge === null) return counted(next, req, ctx);
      const budget = budgets.for(ctx, (retry ?? DEFAULT_POLICY.retry!).budget);
      const first = ctx.attempt;
      if (first === 1) budget.deposit(); // once per logical call
      const { methods } = retry ?? DEFAULT_POLICY.retry!;
      const safe = mayRepeat(req, ctx, methods);
      const replayable = canReplay(req.body);
      const hedged = hedge !== null && replayable && mayRunConcurrently(req, ctx, methods);
      const attempt = hedged ? hedgedAttempt(next, hedgeDeps, budget) : next;
      if (retry === null || retry.attempts <= 1) return counted(attempt, req, ctx);
      if (!replayable) return singleAttempt(attempt, req, ctx, retry, events, 'body-not-replayable');
      // A request that is not safe to repeat is still requeued after a connect failure (it was never sent).
      return retryLoop({ attempt, req, ctx, retry, budget, first, events, random, safe });
    };
  };
}

/** One attempt and no retry: its failure still carries the attempt count. */
async function counted(attempt: Handler, req: MeshRequest, ctx: CallContext): Promise<MeshResponse> {
  try {
    return await attempt(req, ctx);
  } catch (err) {
    if (err instanceof MeshError) err.attempts ??= ctx.attempt;
    throw err;
  }
}

/** A request that may not be repeated still reports, when it fails retryably, why it was not retried. */
async function singleAttempt(
  attempt: Handler,
  req: MeshRequest,
  ctx: CallContext,
  retry: RetryPolicy,
  events: MeshEvents,
  why: GiveUpReason,
): Promise<MeshResponse> {
  try {
    const res = await attempt(req, ctx);
    if (retryStatuses(retry).has(res.status)) giveUp(events, ctx, why, res);
    return res;
  } catch (err) {
    if (isRetryableFailure(err, retry, ctx)) giveUp(events, ctx, why, err);
    if (err instanceof MeshError) err.attempts ??= ctx.attempt;
    throw err;
  }
}

/**
 * Reports why no further attempt is made: as an event, and on what the caller gets (the error's or
 * the response's `gaveUp`, which an HttpStatusError carries on).
 */
function giveUp(events: MeshEvents, ctx: CallContext, why: GiveUpReason, outcome: unknown): void {
  const isError = outcome instanceof MeshError;
  if (isError || isResponse(outcome)) outcome.gaveUp ??= why;
  if (events.has('giveUp')) {
    const reason = !isError && isResponse(outcome) ? outcome.status : outcome;
    events.emit('giveUp', { service: ctx.service, route: ctx.route, attempts: ctx.attempt, why, reason });
  }
}

function isResponse(value: unknown): value is MeshResponse {
  return typeof value === 'object' && value !== null && 'status' in value && 'body' in value && !(value instanceof Error);
}

/**
 * The first attempt runs on its own, so a call that succeeds pays nothing for the retry machinery;
 * only a failure, or an answer with a retryable status, goes on to the retry loop.
 */
async function retryLoop(call: RetryCall): Promise<MeshResponse> {
  let first: MeshResponse;
  try {
    first = await call.attempt(call.req, call.ctx);
  } catch (err) {
    return retryAfter(call, err, undefined);
  }
  if (!retryStatuses(call.retry).has(first.status)) return first;
  if (!call.safe) {
    giveUp(call.events, call.ctx, 'not-idempotent', first);
    return first;
  }
  return retryAfter(call, undefined, first);
}

/**
 * The slow path: decides on the first attempt's outcome (`failure` or `answer`), then lets p-retry run
 * the rest. `attemptNumber` counts this request's attempts (what `retry.attempts` and the backoff
 * read); `numbered` turns it into the call's attempt number (what is reported and sent).
 */
async function retryAfter(call: RetryCall, failure: unknown, answer: MeshResponse | undefined): Promise<MeshResponse> {
  const { attempt, req, ctx, retry, budget, events, random } = call;
  const statuses = retryStatuses(retry);
  const numbered = (attemptNumber: number): number => call.first + attemptNumber - 1;

  const decide = (attemptNumber: number, retryAfterHeader: number | undefined): Decision => {
    if (attemptNumber >= retry.attempts) return { retry: false, why: 'attempts' };
    let wait = fullJitterBackoff(attemptNumber, retry.backoff.base, retry.backoff.max, random);
    if (retryAfterHeader !== undefined && retry.retryAfter.honor) {
      if (retryAfterHeader > retry.retryAfter.max) return { retry: false, why: 'retry-after' };
      wait = Math.max(wait, retryAfterHeader);
    }
    if (Date.now() + wait + MIN_ATTEMPT_MS > ctx.deadline) return { retry: false, why: 'deadline' };
    if (!budget.tryWithdraw()) {
      if (events.has('budgetExhausted')) events.emit('budgetExhausted', { service: ctx.service, route: ctx.route, attempt: numbered(attemptNumber) });
      return { retry: false, why: 'budget' };
    }
    return { retry: true, delay: wait };
  };

  /** Reports the decision; true when a retry follows. */
  const announce = (decision: Decision, attemptNumber: number, outcome: unknown): decision is { retry: true; delay: number } => {
    if (!decision.retry) {
      giveUp(events, ctx, decision.why, outcome);
      return false;
    }
    if (events.has('retry')) {
      const reason = isResponse(outcome) ? outcome.status : outcome;
      events.emit('retry', { service: ctx.service, route: ctx.route, attempt: numbered(attemptNumber + 1), delay: decision.delay, reason });
    }
    return true;
  };

  /** An answer with a retryable status: returned when no retry follows, else discarded and thrown on. */
  const judgeAnswer = (res: MeshResponse, attemptNumber: number): MeshResponse => {
    res.attempts = numbered(attemptNumber);
    const header = res.status === 429 || res.status === 503 ? retryAfterMs(res.headers['retry-after']) : undefined;
    const decision = decide(attemptNumber, header);
    if (!announce(decision, attemptNumber, res)) return res;
    res.body.destroy();
    throw new RetryableStatus(res.status, decision.delay);
  };

  /** After a failed attempt: waits the backoff and resolves true when another attempt follows. */
  const shouldRetry = async (error: unknown, attemptNumber: number): Promise<boolean> => {
    if (ctx.signal?.aborted) return false; // the deadline or the caller ended the call: nothing to decide
    if (error instanceof RetryableStatus) {
      await delay(error.delay, ctx.signal);
      return true;
    }
    if (!isRetryableFailure(error, retry, ctx)) return announce({ retry: false, why: 'not-retryable' }, attemptNumber, error);
    if (!call.safe && !isMeshError(error, ErrorCode.Connect)) return announce({ retry: false, why: 'not-idempotent' }, attemptNumber, error);
    const decision = decide(attemptNumber, undefined);
    if (!announce(decision, attemptNumber, error)) return false;
    await delay(decision.delay, ctx.signal);
    return true;
  };

  const runAttempt = async (attemptNumber: number): Promise<MeshResponse> => {
    ctx.attempt = numbered(attemptNumber);
    const res = await attempt(req, ctx);
    res.attempts = ctx.attempt;
    if (statuses.has(res.status) && !call.safe) {
      giveUp(events, ctx, 'not-idempotent', res);
      return res;
    }
    return statuses.has(res.status) ? judgeAnswer(res, attemptNumber) : res;
  };

  try {
    if (answer) {
      try {
        return judgeAnswer(answer, 1);
      } catch (err) {
        failure = err;
      }
    }
    if (!(await shouldRetry(failure, 1))) throw failure;
    return await pRetry((n) => runAttempt(n + 1), {
      retries: retry.attempts - 2,
      minTimeout: 0, // the backoff is waited for in shouldRetry, with full jitter and Retry-After
      signal: ctx.signal,
      shouldRetry: ({ error, attemptNumber }) => shouldRetry(error, attemptNumber + 1),
    });
  } catch (err) {
    if (err instanceof MeshError) err.attempts = ctx.attempt;
    // p-retry does not consult shouldRetry after the last allowed attempt, so giving up is reported here.
    if (ctx.attempt >= numbered(retry.attempts) && !ctx.signal?.aborted) {
      giveUp(events, ctx, isRetryableFailure(err, retry, ctx) ? 'attempts' : 'not-retryable', err);
    }
    throw err;
  }
}
