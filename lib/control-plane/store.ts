import { ErrorCode, MeshError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ClientDirectory } from './clients.ts';
import type { Revision } from './revision.ts';

export interface PutOptions {
  /** Compare-and-swap: publish only if this is still the current revision. */
  readonly ifMatch?: string | undefined;
}

/**
 * Where the control plane keeps its policy: the file store (one process) or etcd (any number of
 * replicas). Revisions reaching put() are already validated; put() resolves with the revision as
 * the store named it (an ordered store names it by its own sequence).
 */
export interface RevisionStore {
  /** The revision in force. */
  current(): Revision;
  /**
   * Publishes `next` and resolves with it; with `ifMatch` naming another revision it rejects with
   * RevisionConflict and changes nothing; when the backing store cannot be reached it rejects with
   * StoreUnavailable. Publishing the current document (same digest) again changes nothing.
   */
  put(next: Revision, options?: PutOptions): Promise<Revision>;
  /** The last published revisions, newest first (the current one included). */
  history(): readonly Revision[];
  /** Calls `listener` with every revision published after this call; returns the unsubscriber. */
  watch(listener: (revision: Revision) => void): () => void;
  /** False while the backing store is unreachable; /healthz reports "degraded". */
  healthy(): boolean;
  /** Where client records are shared with other replicas; absent for a store that has no replicas. */
  readonly clients?: ClientDirectory;
  close(): Promise<void>;
}

/** A compare-and-swap lost: someone else published first. Carries the revision now in force. */
export class RevisionConflict extends MeshError {
  readonly current: string;

  constructor(expected: string, current: string) {
    super(ErrorCode.Conflict, `If-Match ${expected} is not the current revision; the current revision is ${current}`);
    this.current = current;
  }
}

/** The backing store could not be reached: nothing was published; the revision in force stays. */
export class StoreUnavailable extends MeshError {
  constructor(what: string, cause?: unknown) {
    super(ErrorCode.StoreUnavailable, `the policy store is unavailable (${what}); nothing was published and the revision in force stays`, { cause, retryable: true });
  }
}

/**
 * What every store keeps the same way: the revisions published, newest first (the last
 * `historyLimit` distinct ones), and the listeners told of each new one. A store adds where revisions
 * come from and go to: put(), healthy() and close().
 */
export abstract class RevisionStoreBase implements RevisionStore {
  #history: Revision[];
  readonly #historyLimit: number;
  readonly #logger: Logger;
  readonly #listeners = new Set<(revision: Revision) => void>();

  /** `history`, newest first, may start empty for a store that reads it before it serves. */
  protected constructor(history: readonly Revision[], historyLimit: number, logger: Logger) {
    this.#historyLimit = historyLimit;
    this.#logger = logger;
    this.#history = history.slice(0, historyLimit);
  }

  abstract put(next: Revision, options?: PutOptions): Promise<Revision>;
  abstract healthy(): boolean;
  abstract close(): Promise<void>;

  current(): Revision {
    return this.#history[0]!;
  }

  history(): readonly Revision[] {
    return this.#history;
  }

  watch(listener: (revision: Revision) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Replaces the history with one read from the backing store, newest first. */
  protected loaded(history: readonly Revision[]): void {
    this.#history = history.slice(0, this.#historyLimit);
  }

  /** `revision` goes in force: kept first in history, logged, and told to every listener (a throwing one is reported, never breaks a publish). */
  protected publish(revision: Revision): void {
    this.#history = [revision, ...this.#history.filter((r) => r.revision !== revision.revision)].slice(0, this.#historyLimit);
    this.#logger.info('policy revision published', { revision: revision.revision, source: revision.source });
    for (const listener of this.#listeners) {
      try {
        listener(revision);
      } catch (err) {
        process.emitWarning(`meshfetch control plane revision listener threw: ${String(err)}`, 'MeshfetchListenerWarning');
      }
    }
  }
}
