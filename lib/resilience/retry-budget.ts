import type { LayerDeps } from '../pipeline/layers.ts';
import { PerService } from '../pipeline/per-service.ts';
import type { CallContext } from '../pipeline/types.ts';
import type { RetryPolicy } from '../policy/types.ts';

type BudgetSettings = RetryPolicy['budget'];

const SLOTS = 10;

/**
 * Finagle's retry budget: retries may add at most `ratio` of the calls made in the last `ttl`, plus a
 * reserve of `minPerSecond` × ttl so that a quiet service can still retry. Deposits and withdrawals
 * are counted in a ring of time slots covering `ttl`, so old ones expire without any timer.
 */
export class RetryBudget {
  readonly settings: BudgetSettings;
  readonly #slotMs: number;
  readonly #deposits = new Float64Array(SLOTS);
  readonly #withdrawals = new Float64Array(SLOTS);
  #depositSum = 0;
  #withdrawalSum = 0;
  #slot = 0;
  #slotStart: number;

  constructor(settings: BudgetSettings, now = Date.now()) {
    this.settings = settings;
    this.#slotMs = settings.ttl / SLOTS;
    this.#slotStart = now;
  }

  /** Every logical call deposits once. */
  deposit(now = Date.now()): void {
    this.#advance(now);
    this.#deposits[this.#slot]!++;
    this.#depositSum++;
  }

  /** Takes one retry (or hedge) from the budget; false when the budget is spent. */
  tryWithdraw(now = Date.now()): boolean {
    if (this.balance(now) < 1) return false;
    this.#withdrawals[this.#slot]!++;
    this.#withdrawalSum++;
    return true;
  }

  /** Retries still allowed right now. */
  balance(now = Date.now()): number {
    this.#advance(now);
    const reserve = (this.settings.minPerSecond * this.settings.ttl) / 1000;
    return this.settings.ratio * this.#depositSum + reserve - this.#withdrawalSum;
  }

  #advance(now: number): void {
    const elapsed = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (elapsed <= 0) return;
    for (let i = 0; i < Math.min(elapsed, SLOTS); i++) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#depositSum -= this.#deposits[this.#slot]!;
      this.#withdrawalSum -= this.#withdrawals[this.#slot]!;
      this.#deposits[this.#slot] = 0;
      this.#withdrawals[this.#slot] = 0;
    }
    this.#slotStart += elapsed * this.#slotMs;
  }
}

/**
 * One budget per destination service, made on first use (bounded as PerService says). Routes whose
 * policies give the service different budget settings each get their own, so they never reset each
 * other's counts; a service keeps at most a few settings (old ones are dropped first).
 */
export class RetryBudgets {
  readonly #byService: PerService<Map<string, RetryBudget>>;

  constructor(deps?: Pick<LayerDeps, 'onPolicy' | 'shutdown'>) {
    this.#byService = new PerService(() => new Map(), deps);
  }

  for(ctx: Pick<CallContext, 'service' | 'endpoints'>, settings: BudgetSettings): RetryBudget {
    const budgets = this.#byService.get(ctx);
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
