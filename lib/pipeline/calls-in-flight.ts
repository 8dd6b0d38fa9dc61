/**
 * The calls under way in one mesh, each with the controller that aborts it. The deadline layer adds a
 * call when it starts and removes it when the call fails or its response body closes; mesh.close()
 * waits for the registry to empty (its grace period), then aborts what is left. One registry serves
 * both, so a call pays for one entry, not two.
 */
export class CallsInFlight<T> {
  readonly #calls = new Map<AbortController, T>();
  #onIdle: (() => void) | undefined;

  add(controller: AbortController, call: T): void {
    this.#calls.set(controller, call);
  }

  delete(controller: AbortController): void {
    if (this.#calls.delete(controller) && this.#calls.size === 0) this.#onIdle?.();
  }

  /** Resolves once no call is under way. */
  idle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#onIdle = resolve));
  }

  /** Aborts every call still under way, each with the reason made for it. */
  abortAll(reason: (call: T) => unknown): void {
    const calls = [...this.#calls];
    this.#calls.clear();
    for (const [controller, call] of calls) controller.abort(reason(call));
  }
}
