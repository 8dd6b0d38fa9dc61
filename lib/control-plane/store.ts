import { ErrorCode, MeshError } from '../errors.ts';
import type { Revision } from './revision.ts';

export interface PutOptions {
  /** Compare-and-swap: publish only if this is still the current revision. */
  readonly ifMatch?: string | undefined;
}

/**
 * Where the control plane keeps its policy. The file store is the one built; an etcd store (issue
 * #13) implements the same five methods. Revisions reaching put() are already validated.
 */
export interface RevisionStore {
  /** The revision in force. */
  current(): Revision;
  /**
   * Publishes `next` and resolves with it; with `ifMatch` naming another revision it rejects with
   * RevisionConflict and changes nothing. Publishing the current document again changes nothing.
   */
  put(next: Revision, options?: PutOptions): Promise<Revision>;
  /** The last published revisions, newest first (the current one included). */
  history(): readonly Revision[];
  /** Calls `listener` with every revision published after this call; returns the unsubscriber. */
  watch(listener: (revision: Revision) => void): () => void;
  /** False while the backing store is unreachable; /healthz reports "degraded". */
  healthy(): boolean;
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
