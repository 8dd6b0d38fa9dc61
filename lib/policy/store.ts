import type { CompiledPolicy } from './compile.ts';

/**
 * Holds the policy in force. Every call reads `current` when it starts, so installing a new document
 * changes the next call without a new client. Until a first policy is installed, calls wait in ready().
 */
export class PolicyStore {
  #current: CompiledPolicy | undefined;
  #ready: Promise<CompiledPolicy>;
  #resolveReady!: (policy: CompiledPolicy) => void;
  readonly #listeners = new Set<(policy: CompiledPolicy) => void>();

  constructor(initial?: CompiledPolicy) {
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
    if (initial) this.install(initial);
  }

  get current(): CompiledPolicy | undefined {
    return this.#current;
  }

  /** Resolves with the policy in force once there is one. */
  ready(): Promise<CompiledPolicy> {
    return this.#ready;
  }

  install(policy: CompiledPolicy): void {
    const previous = this.#current;
    this.#current = policy;
    if (!previous) this.#resolveReady(policy);
    for (const listener of this.#listeners) listener(policy);
  }

  /** Calls `listener` with every policy installed from now on; returns the unsubscriber. */
  onInstall(listener: (policy: CompiledPolicy) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
