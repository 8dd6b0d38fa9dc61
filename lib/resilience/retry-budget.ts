import type { LayerDeps } from '../pipeline/layers.ts';
import { namedInPolicy, PerDestination } from '../pipeline/per-destination.ts';
import type { CallContext } from '../pipeline/types.ts';
import type { RetryPolicy } from '../policy/types.ts';
import { SlidingCounts } from './sliding-counts.ts';

type BudgetSettings = RetryPolicy['budget'];

const DEPOSITS = 0;
const WITHDRAWALS = 1;

/**
 * Finagle's retry budget: retries may add at most `ratio` of the calls made in the last `ttl`, plus a
 * reserve of `minPerSecond` × ttl so that a quiet service can still retry. Deposits and withdrawals
 * are counted over a sliding window of `ttl`, so old ones expire without any timer.
 */
export class RetryBudget {
  readonly settings: BudgetSettings;
  readonly #counts: SlidingCounts;

  constructor(settings: BudgetSettings, now = Date.now()) {
    this.settings = settings;
    this.#counts = new SlidingCounts(settings.ttl, 2, now);
  }

  /** Every logical call deposits once. */
  deposit(now = Date.now()): void {
    this.#counts.add(DEPOSITS, now);
  }

  /** Takes one retry (or hedge) from the budget; false when the budget is spent. */
  tryWithdraw(now = Date.now()): boolean {
    if (this.balance(now) < 1) return false;
    this.#counts.add(WITHDRAWALS, now);
    return true;
  }

  /** Retries still allowed right now. */
  balance(now = Date.now()): number {
    const reserve = (this.settings.minPerSecond * this.settings.ttl) / 1000;
    return this.settings.ratio * this.#counts.sum(DEPOSITS, now) + reserve - this.#counts.sum(WITHDRAWALS, now);
  }
}

/**
 * One budget per destination service, made on first use (bounded as PerDestination says). Routes whose
 * policies give the service different budget settings each get their own, so they never reset each
 * other's counts; a service keeps at most a few settings (old ones are dropped first).
 */
export class RetryBudgets {
  readonly #byService: PerDestination<Map<string, RetryBudget>>;

  constructor(deps?: Pick<LayerDeps, 'onPolicy' | 'shutdown'>) {
    this.#byService = new PerDestination(deps);
  }

  for(ctx: Pick<CallContext, 'service' | 'policyInForce'>, settings: BudgetSettings): RetryBudget {
    const { service } = ctx;
    const budgets = this.#byService.get(service) ?? this.#byService.add(service, service, namedInPolicy(ctx), new Map());
    const key = `${settings.ratio}/${settings.minPerSecond}/${settings.ttl}`;
    let budget = budgets.get(key);
    if (!budget) {
      if (budgets.size >= MAX_SETTINGS_PER_SERVICE) budgets.delete(budgets.keys().next().value!);
      budgets.set(key, (budget = new RetryBudget(settings)));
    }
    return budget;
  }

  /** Services holding budgets. */
  get size(): number {
    return this.#byService.size;
  }
}

const MAX_SETTINGS_PER_SERVICE = 8;
