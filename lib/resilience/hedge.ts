import type { MeshEvents } from '../events.ts';
import type { CallContext, Handler, MeshRequest, MeshResponse } from '../pipeline/types.ts';
import type { LatencyTracker } from './latency.ts';
import type { RetryBudget } from './retry-budget.ts';

export interface HedgeDeps {
  readonly events: MeshEvents;
  readonly latency: LatencyTracker;
}

class HedgeLost extends Error {
  override readonly name = 'HedgeLost';
}

/**
 * One attempt that is hedged: when no answer came within the delay (fixed, or the route's observed
 * p95), up to `max` more copies are sent, each paid from the retry budget and carrying the same
 * attempt number. The first answer wins and the others are aborted; once every copy in flight has
 * failed, the attempt fails with the last failure and the retry layer decides what comes next.
 */
export function hedgedAttempt(next: Handler, deps: HedgeDeps, budget: RetryBudget): Handler {
  return (req: MeshRequest, ctx: CallContext): Promise<MeshResponse> => {
    const hedge = ctx.policy.hedge!;
    const started = Date.now();
    const wait = hedge.delay === 'p95' ? deps.latency.p95(ctx.service, ctx.route) : hedge.delay;
    return new Promise((resolve, reject) => {
      const controllers: AbortController[] = [];
      let settled = false;
      let failed = 0;
      let timer: NodeJS.Timeout | undefined;
      let lastError: unknown;

      const finish = (winner: AbortController | undefined): void => {
        settled = true;
        clearTimeout(timer);
        for (const controller of controllers) if (controller !== winner) controller.abort(new HedgeLost('another attempt answered first'));
      };
      const launch = (): void => {
        const controller = new AbortController();
        controllers.push(controller);
        const signal = ctx.signal ? AbortSignal.any([ctx.signal, controller.signal]) : controller.signal;
        const copy: CallContext = { ...ctx, signal };
        next(req, copy).then(
          (res) => {
            if (settled) return void res.body.destroy();
            deps.latency.record(ctx.service, ctx.route, Date.now() - started);
            finish(controller);
            resolve(res);
          },
          (err: unknown) => {
            if (settled) return;
            lastError = err;
            if (++failed === controllers.length) {
              finish(undefined);
              reject(lastError);
            }
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
