import { ErrorCode, MeshError } from '../errors.ts';
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

/** Listeners of one store; a throwing listener is reported, never breaks a publish. */
export class RevisionListeners {
  readonly #listeners = new Set<(revision: Revision) => void>();

  add(listener: (revision: Revision) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  publish(revision: Revision): void {
    for (const listener of this.#listeners) {
      try {
        listener(revision);
      } catch (err) {
        process.emitWarning(`meshfetch control plane revision listener threw: ${String(err)}`, 'MeshfetchListenerWarning');
      }
    }
  }
}

/** Keeps the last `limit` distinct revisions, newest first. */
export function pushHistory(history: readonly Revision[], revision: Revision, limit: number): Revision[] {
  return [revision, ...history.filter((r) => r.revision !== revision.revision)].slice(0, limit);
}
