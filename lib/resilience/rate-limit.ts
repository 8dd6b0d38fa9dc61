import type { LayerDeps } from '../pipeline/layers.ts';
import { namedInPolicy, PerDestination } from '../pipeline/per-destination.ts';
import type { DestinationState } from '../pipeline/per-destination.ts';
import type { Middleware } from '../pipeline/types.ts';
import { limitedError } from './limits.ts';

const SWEEP_MS = 10_000;

/**
 * A token bucket for one destination service: `burst` tokens, refilled at `rps` per second. Tokens
 * are refilled from the time elapsed when a call asks for one, so there is no timer.
 */
class TokenBucket implements DestinationState {
  #tokens: number;
  #refilledAt: number;
  #burst: number;
  #rps: number;

  constructor(rps: number, burst: number, now: number) {
    this.#tokens = burst;
    this.#burst = burst;
    this.#rps = rps;
    this.#refilledAt = now;
  }

  tryTake(rps: number, burst: number, now: number): boolean {
    this.#burst = burst;
    this.#rps = rps;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) * rps) / 1000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  /** A bucket that has filled up again holds nothing worth keeping: a new one starts full. */
  idle(now: number): boolean {
    return this.#tokens + ((now - this.#refilledAt) * this.#rps) / 1000 >= this.#burst;
  }
}

/** Enforces `rateLimit: { rps, burst }` per destination service: MESHFETCH_RATE_LIMITED when empty. */
export function rateLimitLayer(deps: LayerDeps): Middleware {
  const buckets = new PerDestination<TokenBucket>(deps, SWEEP_MS);
  return (next) => (req, ctx) => {
    const limit = ctx.policy.rateLimit;
    if (limit === null) return next(req, ctx);
    const now = Date.now();
    const bucket = buckets.get(ctx.service, now) ?? buckets.add(ctx.service, ctx.service, namedInPolicy(ctx), new TokenBucket(limit.rps, limit.burst, now), now);
    if (!bucket.tryTake(limit.rps, limit.burst, now)) {
      return Promise.reject(limitedError(deps.events, ctx, 'rate', `${limit.rps}/s, burst ${limit.burst}`));
    }
    return next(req, ctx);
  };
}
