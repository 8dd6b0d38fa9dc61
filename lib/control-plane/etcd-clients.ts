import type { Lease, Namespace } from 'etcd3';
import type { Logger } from '../log.ts';
import type { ClientDirectory, ClientRecord } from './clients.ts';

const CLIENTS_PREFIX = 'clients/';

/** Records remembered for re-writing under a new lease; the same bound as the registry's. */
const MAX_KNOWN = 10_000;

/**
 * Client records shared by every replica: `<prefix>/clients/<instance>`, each written under this
 * replica's lease, so when the replica dies its records vanish once the lease expires (unless their
 * clients, moved to another replica, re-reported there: that re-attaches the key to the other
 * replica's lease). Writes are queued, one at a time, latest record per instance wins.
 */
export class EtcdClientDirectory implements ClientDirectory {
  readonly #ns: Namespace;
  readonly #ttl: number;
  readonly #logger: Logger;
  readonly #known = new Map<string, ClientRecord>();
  readonly #pending = new Map<string, ClientRecord>();
  /** Granted on the first write, again after one is lost. */
  #lease: Lease | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(ns: Namespace, ttlSeconds: number, logger: Logger) {
    this.#ns = ns;
    this.#ttl = ttlSeconds;
    this.#logger = logger;
  }

  save(record: ClientRecord): void {
    const copy = { ...record };
    this.#known.delete(copy.instance);
    this.#known.set(copy.instance, copy);
    if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
    this.#pending.set(copy.instance, copy);
    this.resume();
  }

  /** Writes what is pending (called on each save, and when etcd is reachable again). */
  resume(): void {
    if (this.#closed || this.#pending.size === 0) return;
    this.#writing ??= this.#drain().finally(() => (this.#writing = undefined));
  }

  async list(): Promise<ClientRecord[]> {
    const values = await this.#ns.getAll().prefix(CLIENTS_PREFIX).strings();
    return Object.values(values).map((text) => JSON.parse(text) as ClientRecord);
  }

  /** Revokes the lease: this replica's records go at once. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    await this.#lease?.revoke().catch(() => {});
  }

  #leased(): Lease {
    if (this.#lease) return this.#lease;
    const lease = this.#ns.lease(this.#ttl);
    lease.on('lost', (err) => {
      if (this.#lease !== lease) return;
      this.#lease = undefined;
      if (this.#closed) return;
      // etcd forgot the lease (unreachable past the TTL) or never granted it: the next write takes a
      // new one, and every record is written again under it.
      this.#logger.warn('client records lease lost; they are written again under a new one when etcd answers', { error: err.message });
      for (const record of this.#known.values()) this.#pending.set(record.instance, record);
    });
    this.#lease = lease;
    return lease;
  }

  async #drain(): Promise<void> {
    while (this.#pending.size > 0 && !this.#closed) {
      const [instance, record] = this.#pending.entries().next().value!;
      this.#pending.delete(instance);
      try {
        await this.#leased().put(`${CLIENTS_PREFIX}${instance}`).value(JSON.stringify(record));
      } catch (err) {
        // Kept for the next save or a new lease; a report is never worth blocking on.
        if (!this.#pending.has(instance)) this.#pending.set(instance, record);
        this.#logger.debug('client record not shared; written again later', { instance, error: String(err) });
        return;
      }
    }
  }
}
