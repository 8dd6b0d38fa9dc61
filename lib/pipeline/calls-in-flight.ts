import { releaseWhenDone } from '../resilience/limits.ts';
import type { MeshResponse } from './types.ts';

/**
 * Counts the calls under way (each until it fails or its response body closes), so that mesh.close()
 * can give them their grace period whatever they are doing: on the wire, queued in a bulkhead, or
 * waiting out a retry's backoff.
 */
export class CallsInFlight {
  #count = 0;
  #onIdle: (() => void) | undefined;

  track(call: Promise<MeshResponse>): Promise<MeshResponse> {
    this.#count++;
    return releaseWhenDone(call, this.#done);
  }

  /** Resolves once no call is under way. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#onIdle = resolve));
  }

  readonly #done = (): void => {
    if (--this.#count === 0) this.#onIdle?.();
  };
}
