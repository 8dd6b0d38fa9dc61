import type { LoadBalancerPolicy, OutlierDetectionPolicy } from '../policy/types.ts';

/** A failed attempt weighs on an endpoint's latency estimate as at least this many initial RTTs. */
const FAILURE_PENALTY_RTTS = 10;

/**
 * What the balancer knows about one endpoint of one service: its peak-EWMA latency and requests in
 * flight (Finagle's and Linkerd's load estimate), and its failure accrual for outlier ejection.
 * Times are performance.now() milliseconds.
 */
export class EndpointState {
  lastUsed = 0;
  pending = 0;
  /** The latency estimate; NaN until the first answer, when `initialRtt` stands in for it (as in tower). */
  #rtt = NaN;
  #updatedAt = 0;
  consecutiveFailures = 0;
  /** How many times in a row it was ejected; the next ejection lasts base × (ejections + 1). */
  ejections = 0;
  /** Out of rotation until then. */
  ejectedUntil = 0;
  /** Ejected and not yet readmitted: its next outcome decides (the probe). */
  ejected = false;

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  /** Its ejection is over and no probe is in flight yet. */
  awaitingProbe(now: number): boolean {
    return this.ejected && this.pending === 0 && !this.isEjected(now);
  }

  /**
   * The load: the latency estimate decayed by the time since it was last updated (so an endpoint
   * left alone is tried again), times the requests in flight plus one (tower's PeakEwma::load).
   */
  cost(lb: LoadBalancerPolicy, now: number): number {
    const rtt = Number.isNaN(this.#rtt) ? lb.initialRtt : this.#update(0, lb.decay, now);
    return this.pending === 0 ? rtt : rtt * (this.pending + 1);
  }

  /** An answer came after `rtt` ms (or a failure, which counts as at least a penalty). */
  observe(rtt: number, failed: boolean, lb: LoadBalancerPolicy, now: number): void {
    this.#update(failed ? Math.max(rtt, lb.initialRtt * FAILURE_PENALTY_RTTS) : rtt, lb.decay, now);
  }

  /** Peak-EWMA: a sample above the estimate replaces it; a lower one is blended in by recency. */
  #update(sample: number, decay: number, now: number): number {
    if (Number.isNaN(this.#rtt) || this.#rtt < sample) this.#rtt = sample;
    else {
      const weight = Math.exp(-(now - this.#updatedAt) / decay);
      this.#rtt = this.#rtt * weight + sample * (1 - weight);
    }
    this.#updatedAt = now;
    return this.#rtt;
  }

  /** Counts a failure; true when it should now be ejected (always, for a failed probe). */
  failed(outliers: OutlierDetectionPolicy): boolean {
    this.consecutiveFailures++;
    return this.ejected || this.consecutiveFailures >= outliers.consecutiveFailures;
  }

  eject(outliers: OutlierDetectionPolicy, now: number): number {
    const duration = Math.min(outliers.baseEjectionTime * (this.ejections + 1), outliers.maxEjectionTime);
    this.ejections++;
    this.ejected = true;
    this.ejectedUntil = now + duration;
    this.consecutiveFailures = 0;
    return duration;
  }

  /** A success; true when it readmits an ejected endpoint whose probe this was. */
  succeeded(outliers: OutlierDetectionPolicy | null, now: number): boolean {
    this.consecutiveFailures = 0;
    // Healthy for as long as the longest ejection: the next ejection starts from the base again.
    if (this.ejections > 0 && !this.ejected && outliers && now - this.ejectedUntil > outliers.maxEjectionTime) this.ejections = 0;
    if (!this.ejected) return false;
    this.ejected = false;
    return true;
  }
}
