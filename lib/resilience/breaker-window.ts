import type { EventEmitter } from 'node:events';
import { EventEmitter as Emitter } from 'node:events';
import { createRequire } from 'node:module';
import type CircuitBreaker from 'opossum';
import { SlidingCounts } from './sliding-counts.ts';

/** The parts of opossum's Status class (lib/status.js) that a breaker calls; its typings omit them. */
interface OpossumStatus extends EventEmitter {
  increment(property: string, latency?: number): void;
  readonly stats: CircuitBreaker.Stats;
  startListeneningForRotateEvent(): void;
  removeRotateBucketControllerListener(): void;
  shutdown(): void;
}

const require = createRequire(import.meta.url);
const OpossumStatus = require('opossum/lib/status.js') as new (options: CircuitBreaker.StatusOptions) => OpossumStatus;

/** The series of a breaker's SlidingCounts. */
export const SUCCESSES = 0;
export const FAILURES = 1;

/** Never emits: given to opossum so that it starts no bucket timer; this window rotates itself. */
const NO_ROTATION: EventEmitter = new Emitter();

const EMPTY: CircuitBreaker.Stats = {
  failures: 0, fallbacks: 0, successes: 0, rejects: 0, fires: 0, timeouts: 0, cacheHits: 0, cacheMisses: 0,
  semaphoreRejections: 0, percentiles: {}, latencyTimes: [], latencyMean: -1,
};

/**
 * opossum's rolling window, without its costs: by default each breaker keeps every call's latency in
 * its window and runs two intervals (bucket rotation and snapshots). This one counts successes and
 * failures in a SlidingCounts ring that advances on use, keeps no latencies and starts no timer.
 * `fires` is successes + failures, so an outcome the breaker ignores (see `ignoreNextSuccess`)
 * weighs on neither the error rate nor the volume.
 */
export class BreakerWindow extends OpossumStatus {
  readonly #counts: SlidingCounts;
  /** Set just before opossum reports an error it was told to ignore as a 'success': not counted. */
  ignoreNextSuccess = false;

  /** `counts` (SUCCESSES and FAILURES over the breaker's window) may already hold calls made before opossum was. */
  constructor(windowMs: number, counts: SlidingCounts) {
    super({ rollingCountTimeout: windowMs, rollingCountBuckets: 1, enableSnapshots: false, rollingPercentilesEnabled: false, rotateBucketController: NO_ROTATION });
    this.#counts = counts;
  }

  override increment(property: string): void {
    if (property === 'failures') this.#counts.add(FAILURES);
    else if (property === 'successes') {
      if (this.ignoreNextSuccess) this.ignoreNextSuccess = false;
      else this.#counts.add(SUCCESSES);
    }
  }

  override get stats(): CircuitBreaker.Stats {
    const now = Date.now();
    const successes = this.#counts.sum(SUCCESSES, now);
    const failures = this.#counts.sum(FAILURES, now);
    return { ...EMPTY, successes, failures, fires: successes + failures };
  }

  override startListeneningForRotateEvent(): void {}
  override removeRotateBucketControllerListener(): void {}
}
