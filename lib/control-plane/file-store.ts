import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { writeFileAtomically } from '../atomic-write.ts';
import { configError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { parsePolicyText } from '../policy/load.ts';
import { buildRevision, contentOf } from './revision.ts';
import type { DocumentValidator, Revision } from './revision.ts';
import { RevisionConflict, RevisionStoreBase } from './store.ts';
import type { PutOptions } from './store.ts';

export interface FileStoreOptions {
  /** The policy file, YAML (.yaml, .yml) or JSON. It must exist and hold a valid document. */
  readonly path: string;
  readonly logger: Logger;
  readonly validate: DocumentValidator;
  /** How many revisions history() keeps (default 10). */
  readonly historyLimit?: number;
  /** Quiet time after the last change event before the file is read (default 50 ms). */
  readonly debounce?: number;
  /** Told when a hand edit is refused, with the reason. */
  readonly onRefusedEdit?: (reason: string) => void;
}

const textHash = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The policy file is the store. A write goes to a temporary file in the same directory and is
 * renamed over the policy file, so a reader never sees half a document. Editing the file by hand
 * publishes a new revision: the directory is watched (editors replace files by rename), changes are
 * debounced, and a text identical to the last one seen (our own write, an editor touching the file)
 * is ignored. A hand edit that does not validate is logged and refused; the revision in force stays.
 */
export class FileRevisionStore extends RevisionStoreBase {
  readonly #path: string;
  readonly #options: FileStoreOptions;
  readonly #watcher: FSWatcher;
  #lastText: string;
  #debounce: NodeJS.Timeout | undefined;
  /** put() and file reloads run one at a time, in order. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: FileStoreOptions, initial: Revision, text: string) {
    super([initial], options.historyLimit ?? 10, options.logger);
    this.#path = options.path;
    this.#options = options;
    this.#lastText = textHash(text);
    const file = basename(this.#path);
    this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, name) => {
      if (name === file) this.#scheduleReload();
    });
    this.#watcher.on('error', (err) => options.logger.error('policy file watch failed; hand edits are not seen', { file: this.#path, error: String(err) }));
  }

  /** Reads and validates the file; throws MESHFETCH_CONFIG naming the file and each problem. */
  static async open(options: FileStoreOptions): Promise<FileRevisionStore> {
    const text = await readFile(options.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw parsePolicyError(options.path, err);
    });
    const initial = buildRevision(parsePolicyText(text, options.path), options.path, 'file', options.validate);
    return new FileRevisionStore(options, initial, text);
  }

  healthy(): boolean {
    return true;
  }

  put(next: Revision, options: PutOptions = {}): Promise<Revision> {
    return this.#serially(async () => {
      const current = this.current();
      if (options.ifMatch !== undefined && options.ifMatch !== current.revision) throw new RevisionConflict(options.ifMatch, current.revision);
      if (next.digest === current.digest) return current;
      const text = this.#serialize(next);
      // Known before the rename: the watcher's event for our own write must find this text seen.
      await writeFileAtomically(this.#path, text, { beforeRename: () => (this.#lastText = textHash(text)) });
      this.publish(next);
      return next;
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.#debounce);
    this.#watcher.close();
    await this.#queue;
  }

  #serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  #serialize(revision: Revision): string {
    const document = contentOf(revision);
    const ext = extname(this.#path).toLowerCase();
    return ext === '.yaml' || ext === '.yml' ? toYaml(document) : `${JSON.stringify(document, null, 2)}\n`;
  }

  #scheduleReload(): void {
    if (this.#debounce) this.#debounce.refresh();
    else {
      this.#debounce = setTimeout(() => {
        this.#debounce = undefined;
        void this.#serially(() => this.#reload());
      }, this.#options.debounce ?? 50);
      this.#debounce.unref();
    }
  }

  async #reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      // Between an editor's unlink and its rename the file is briefly missing; the rename brings another event.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#refuse(parsePolicyError(this.#path, err as NodeJS.ErrnoException).message);
      return;
    }
    const hash = textHash(text);
    if (hash === this.#lastText) return;
    this.#lastText = hash;
    let revision: Revision;
    try {
      revision = buildRevision(parsePolicyText(text, this.#path), `${this.#path} (edited)`, 'file-edit', this.#options.validate);
    } catch (err) {
      this.#refuse((err as Error).message);
      return;
    }
    if (revision.digest !== this.current().digest) this.publish(revision);
    else this.#options.logger.debug('policy file edited; the document is unchanged', { file: this.#path, revision: revision.revision });
  }

  #refuse(reason: string): void {
    this.#options.logger.warn('policy file edit refused; the revision in force stays', {
      file: this.#path,
      revision: this.current().revision,
      error: reason,
    });
    this.#options.onRefusedEdit?.(reason);
  }
}

function parsePolicyError(path: string, err: NodeJS.ErrnoException): Error {
  return configError(`cannot read policy file ${path}: ${err.code ?? err.message}`, err);
}
