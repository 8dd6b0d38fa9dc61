import type { MeshEvents } from '../events.ts';
import type { CallContext, Handler, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import type { LatencyTracker } from './latency.ts';
import type { RetryBudget } from './retry-budget.ts';
import { retryStatuses } from './retry-rules.ts';

export interface HedgeDeps {
  readonly events: MeshEvents;
  readonly latency: LatencyTracker;
}

const NO_STATUSES: ReadonlySet<number> = new Set();

class HedgeLost extends Error {
  override readonly name = 'HedgeLost';
}

/**
 * One attempt that is hedged: when no answer came within the delay (fixed, or the route's observed
 * p95), up to `max` more copies are sent, each paid from the retry budget and carrying the same
 * attempt number. A copy prefers another endpoint than the copy before it, as a retry does. The first
 * good answer wins and the others are aborted; an answer with a retryable status (a 503) wins only if
 * no copy in flight does better. When every copy failed, the attempt fails with the last failure and
 * the retry layer decides what comes next. The call's context records the endpoint of the copy whose
 * outcome the attempt ends with, so that a retry avoids it and what reads the context after the
 * attempt sees where its answer came from.
 */
export function hedgedAttempt(next: Handler, deps: HedgeDeps, budget: RetryBudget): Handler {
  return (req: MeshRequest, ctx: CallContext): Promise<MeshResponse> => {
    const hedge = ctx.policy.hedge!;
    const started = Date.now();
    const wait = hedge.delay === 'p95' ? deps.latency.p95(ctx) : hedge.delay;
    const retryable = ctx.policy.retry ? retryStatuses(ctx.policy.retry) : NO_STATUSES;
    return new Promise((resolve, reject) => {
      const controllers: AbortController[] = [];
      /** Each copy's context: the endpoint layer notes on it where the copy went. */
      const copies: CallContext[] = [];
      let settled = false;
      let ended = 0;
      let timer: NodeJS.Timeout | undefined;
      let lastError: unknown;
      let lastFailed: CallContext | undefined;
      /** A retryable answer (a 503), kept in case no copy answers better. */
      let held: { res: MeshResponse; controller: AbortController; copy: CallContext } | undefined;

      const finish = (winner: AbortController | undefined, from: CallContext | undefined): void => {
        settled = true;
        ctx.lastEndpoint = from?.lastEndpoint;
        clearTimeout(timer);
        for (const controller of controllers) if (controller !== winner) controller.abort(new HedgeLost('another attempt answered first'));
      };
      /** When no copy is in flight any more, the best thing seen so far ends the attempt. */
      const settleIfLast = (): void => {
        if (++ended < controllers.length) return;
        finish(held?.controller, held?.copy ?? lastFailed);
        if (held) resolve(held.res);
        else reject(lastError);
      };
      const launch = (): void => {
        const controller = new AbortController();
        controllers.push(controller);
        const signal = ctx.signal ? AbortSignal.any([ctx.signal, controller.signal]) : controller.signal;
        const copy: CallContext = { ...ctx, signal, lastEndpoint: copies.at(-1)?.lastEndpoint ?? ctx.lastEndpoint };
        copies.push(copy);
        next(req, copy).then(
          (res) => {
            if (settled) return void res.body.destroy();
            deps.latency.record(ctx, Date.now() - started);
            if (retryable.has(res.status)) {
              held?.res.body.destroy();
              held = { res, controller, copy };
              return settleIfLast();
            }
            held?.res.body.destroy();
            finish(controller, copy);
            resolve(res);
          },
          (err: unknown) => {
            if (settled) return;
            lastError = err;
            lastFailed = copy;
            settleIfLast();
          },
        );
      };
      const scheduleHedge = (): void => {
        if (wait === undefined || controllers.length > hedge.max) return;
        timer = setTimeout(() => {
          if (!budget.tryWithdraw()) {
            if (deps.events.has('budgetExhausted')) {
              deps.events.emit('budgetExhausted', { service: ctx.service, route: ctx.route, attempt: ctx.attempt });
            }
            return;
          }
          if (deps.events.has('hedge')) deps.events.emit('hedge', { service: ctx.service, route: ctx.route, attempt: ctx.attempt, delay: wait });
          launch();
          scheduleHedge();
        }, wait);
      };
      launch();
      scheduleHedge();
    });
  };
}
