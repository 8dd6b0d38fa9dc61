import type { Etcd3, IKeyValue, Namespace, Watcher } from 'etcd3';
import { configError, isMeshError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { EtcdClientDirectory } from './etcd-clients.ts';
import { buildRevision, contentOf, revisionOrder } from './revision.ts';
import type { DocumentValidator, Revision, RevisionSource } from './revision.ts';
import { RevisionConflict, RevisionStoreBase, StoreUnavailable } from './store.ts';
import type { PutOptions } from './store.ts';

export interface EtcdStoreOptions {
  /** etcd client endpoints, e.g. ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]. */
  readonly hosts: readonly string[];
  /** Every key of this control plane lives under `<prefix>/`. */
  readonly prefix: string;
  readonly logger: Logger;
  readonly validate: DocumentValidator;
  /** Revisions kept for rollback (default 10). */
  readonly historyLimit?: number | undefined;
  /** Published only when the store holds no policy yet (`--policy FILE --store etcd://…`). */
  readonly seed?: Revision | undefined;
  /** Seconds a replica's client records outlive it (its etcd lease TTL; default 10). */
  readonly clientLeaseTtl?: number | undefined;
  /** Milliseconds an etcd call may take before the store counts as unavailable (default 2000). */
  readonly callTimeout?: number | undefined;
}

/** What the policy key holds: the document without its revision stamp (the name comes from etcd). */
interface StoredRevision {
  readonly document: Record<string, unknown>;
  readonly source: RevisionSource;
  readonly publishedAt: string;
}

const POLICY_KEY = 'policy';
const HISTORY_PREFIX = 'history/';
/** A history key is named by the sequence its revision replaced: unique, and sorted as numbers sort. */
const historyKey = (replaced: number): string => `${HISTORY_PREFIX}${String(replaced).padStart(15, '0')}`;

/** gRPC's message without its empty trailing "Resolution note:". */
const etcdMessage = (err: unknown): string => String((err as Error).message ?? err).replace(/\.?\s*Resolution note:\s*$/, '');

const stored = (revision: Revision): string =>
  JSON.stringify({ document: contentOf(revision), source: revision.source, publishedAt: revision.publishedAt } satisfies StoredRevision);

/**
 * The policy kept in etcd, for any number of control-plane replicas. The document is the value of
 * `<prefix>/policy`; its mod_revision names the revision (`<mod_revision>-<digest prefix>`), so every
 * replica names it the same way and orders names without asking etcd. A publish is one transaction
 * that compares the policy key's mod_revision with the revision the writer expects, writes the new
 * document and its history entry (same mod_revision), or else reads the winner. Each replica watches
 * the key and keeps the revision in memory: reads and watches need no etcd, so they keep working
 * while it is down; writes then fail with StoreUnavailable (503).
 */
export class EtcdRevisionStore extends RevisionStoreBase {
  readonly clients: EtcdClientDirectory;
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  readonly #options: EtcdStoreOptions;
  readonly #where: string;
  #watcher: Watcher | undefined;
  #connected = true;

  private constructor(client: Etcd3, options: EtcdStoreOptions) {
    super([], options.historyLimit ?? 10, options.logger);
    this.#client = client;
    this.#ns = client.namespace(`${options.prefix}/`);
    this.#options = options;
    this.#where = `etcd ${options.hosts.join(',')} ${options.prefix}`;
    this.clients = new EtcdClientDirectory(this.#ns, options.clientLeaseTtl ?? 10, options.logger);
  }

  /** Connects, seeds an empty store, reads the policy and its history, and starts watching. */
  static async open(options: EtcdStoreOptions): Promise<EtcdRevisionStore> {
    // Loaded here, not at the top: a mesh or a file-store control plane never loads gRPC.
    const [{ Etcd3, isRecoverableError }, { ExponentialBackoff, handleWhen, noop, retry }] = await Promise.all([import('etcd3'), import('cockatiel')]);
    const callTimeout = options.callTimeout ?? 2_000;
    const client = new Etcd3({
      hosts: [...options.hosts],
      dialTimeout: callTimeout,
      // gRPC's own reconnect backoff (up to 120 s by default) would keep writes failing long after etcd is back.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 2_000 },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeout }),
      faultHandling: {
        // No circuit breaker: a write answers 503 at once when etcd is down and works again as soon as it is back.
        host: () => noop,
        // With several etcd hosts, a call that failed on one is tried on the next.
        global: options.hosts.length > 1 ? retry(handleWhen(isRecoverableError), { maxAttempts: options.hosts.length - 1 }) : noop,
        // A watch lost to an etcd restart comes back within 2 s. (etcd3 types this as IBackoff but, as
        // its own default does, calls next() on it first: a factory is what it takes.)
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }) as never,
      },
    });
    try {
      const store = new EtcdRevisionStore(client, options);
      await store.#load();
      await store.#watch();
      return store;
    } catch (err) {
      client.close();
      if (isMeshError(err)) throw err;
      throw configError(`policy store etcd://${options.hosts.map((h) => h.replace(/^https?:\/\//, '')).join(',')}/${options.prefix}: cannot reach etcd: ${etcdMessage(err)}`, err);
    }
  }

  healthy(): boolean {
    return this.#connected;
  }

  async put(next: Revision, options: PutOptions = {}): Promise<Revision> {
    let current = this.current();
    const { ifMatch } = options;
    let expected: number;
    if (ifMatch !== undefined) {
      const order = revisionOrder(ifMatch);
      // A name this store never gave, or one this replica already knows is stale (or not the name of
      // its sequence), loses at once; a newer one (this replica is behind) is for etcd to judge.
      const stale = order === undefined || order < current.sequence! || (order === current.sequence && ifMatch !== current.revision);
      if (stale) throw new RevisionConflict(ifMatch, current.revision);
      if (ifMatch === current.revision && next.digest === current.digest) return current;
      expected = order;
    } else {
      if (next.digest === current.digest) return current;
      expected = current.sequence!;
    }
    // Without If-Match a publish still compares, so that two replicas cannot interleave history; it
    // follows a newer revision it learns of, a bounded number of times.
    for (let attempt = 0; ; attempt++) {
      const result = await this.#call('publish', () =>
        this.#ns
          .if(POLICY_KEY, 'Mod', '==', expected)
          .then(this.#ns.put(POLICY_KEY).value(stored(next)), this.#ns.put(historyKey(expected)).value(stored(next)))
          .else(this.#ns.get(POLICY_KEY))
          .commit(),
      );
      if (result.succeeded) {
        const published = this.#revisionOf(contentOf(next), next.source, Number(result.header.revision), next.publishedAt, () => {});
        this.#adopt(published);
        void this.#trimHistory();
        return published;
      }
      const winner = result.responses[0]?.response_range.kvs[0];
      if (winner) this.#adoptStored(winner);
      current = this.current();
      if (ifMatch !== undefined) throw new RevisionConflict(ifMatch, current.revision);
      if (next.digest === current.digest) return current;
      if (attempt === 2) throw new RevisionConflict(`${expected}`, current.revision);
      expected = current.sequence!;
    }
  }

  async close(): Promise<void> {
    await this.#watcher?.cancel().catch(() => {});
    await this.clients.close();
    this.#client.close();
  }

  /** Reads the policy (seeding an empty store) and the history. */
  async #load(): Promise<void> {
    const limit = this.#options.historyLimit ?? 10;
    let kv = (await this.#ns.get(POLICY_KEY).exec()).kvs[0];
    const { seed } = this.#options;
    if (!kv && seed) {
      // Create == 0: only while the key does not exist, so a seed never overwrites what another replica wrote.
      const result = await this.#ns
        .if(POLICY_KEY, 'Create', '==', 0)
        .then(this.#ns.put(POLICY_KEY).value(stored(seed)), this.#ns.put(historyKey(0)).value(stored(seed)))
        .else(this.#ns.get(POLICY_KEY))
        .commit();
      kv = result.succeeded ? (await this.#ns.get(POLICY_KEY).exec()).kvs[0] : result.responses[0]?.response_range.kvs[0];
      this.#options.logger.info(result.succeeded ? 'etcd store seeded from the policy file' : 'etcd store already holds a policy; the policy file is not used', {});
    }
    if (!kv) throw configError(`policy store ${this.#where}: holds no policy yet; start one control plane with --policy FILE to seed it`);
    const current = this.#fromKv(kv, this.#options.validate);
    const older = (await this.#ns.getAll().prefix(HISTORY_PREFIX).sort('Key', 'Descend').limit(limit).exec()).kvs;
    const history: Revision[] = [current];
    for (const entry of older) {
      if (Number(entry.mod_revision) >= current.sequence!) continue;
      try {
        history.push(this.#fromKv(entry, () => {}));
      } catch {
        // A history entry that no longer parses is left out of rollback, not fatal.
      }
    }
    this.loaded(history);
  }

  async #watch(): Promise<void> {
    const watcher = await this.#ns.watch().key(POLICY_KEY).startRevision(String(this.current().sequence! + 1)).create();
    this.#watcher = watcher;
    watcher.on('put', (kv) => this.#adoptStored(kv));
    watcher.on('disconnected', (err) => {
      if (!this.#connected) return;
      this.#connected = false;
      this.#options.logger.warn('policy store unreachable; serving the revision in force, writes refused', { store: this.#where, revision: this.current().revision, error: err.message });
    });
    watcher.on('connected', () => {
      if (this.#connected) return;
      this.#connected = true;
      this.#options.logger.warn('policy store reachable again', { store: this.#where });
      // The watch resumes from the last revision it saw; a read as well closes any gap.
      void this.#catchUp();
      this.clients.resume();
    });
    watcher.on('error', (err) => this.#options.logger.error('policy store watch failed', { store: this.#where, error: err.message }));
  }

  async #catchUp(): Promise<void> {
    try {
      const kv = (await this.#ns.get(POLICY_KEY).exec()).kvs[0];
      if (kv) this.#adoptStored(kv);
    } catch (err) {
      this.#options.logger.debug('catch-up read failed; the watch will deliver', { error: String(err) });
    }
  }

  /** Runs one etcd call; a failure to reach etcd becomes StoreUnavailable. */
  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.#connected = true;
      return result;
    } catch (err) {
      // /healthz says degraded from the first failed call, not only once the watch notices.
      this.#connected = false;
      this.#options.logger.warn('policy store call failed', { store: this.#where, call: what, error: etcdMessage(err) });
      throw new StoreUnavailable(`${this.#where}: ${etcdMessage(err)}`, err);
    }
  }

  #revisionOf(document: unknown, source: RevisionSource, sequence: number, publishedAt: string, validate: DocumentValidator): Revision {
    return buildRevision(document, `${this.#where}/${POLICY_KEY} at etcd revision ${sequence}`, source, validate, { sequence, publishedAt });
  }

  #fromKv(kv: IKeyValue, validate: DocumentValidator): Revision {
    const value = JSON.parse(kv.value.toString('utf8')) as StoredRevision;
    return this.#revisionOf(value.document, value.source, Number(kv.mod_revision), value.publishedAt, validate);
  }

  /** A revision seen in etcd (watch event, lost transaction, catch-up read) goes in force if newer. */
  #adoptStored(kv: IKeyValue): void {
    if (Number(kv.mod_revision) <= this.current().sequence!) return;
    try {
      this.#adopt(this.#fromKv(kv, this.#options.validate));
    } catch (err) {
      this.#options.logger.error('a revision in the policy store does not validate here; the revision in force stays', {
        store: this.#where,
        etcdRevision: kv.mod_revision,
        revision: this.current().revision,
        error: (err as Error).message,
      });
    }
  }

  #adopt(revision: Revision): void {
    if (revision.sequence! <= this.current().sequence!) return;
    this.publish(revision);
  }

  /** Deletes history entries past the limit; best effort (the next publish tries again). */
  async #trimHistory(): Promise<void> {
    try {
      const keys = await this.#ns.getAll().prefix(HISTORY_PREFIX).sort('Key', 'Descend').keys();
      for (const key of keys.slice(this.#options.historyLimit ?? 10)) await this.#ns.delete().key(key).exec();
    } catch (err) {
      this.#options.logger.debug('history trim failed; retried on the next publish', { error: String(err) });
    }
  }
}
