/** What a service name or instance id sent by a client may look like. */
export const CLIENT_IDENTITY = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** What the control plane knows of one client (one mesh instance). */
export interface ClientRecord {
  service: string;
  instance: string;
  /** The revision the client last said it applied. */
  revision: string | undefined;
  /** The revision it last refused, and why; cleared when it applies a newer one. */
  rejectedRevision: string | undefined;
  lastError: string | undefined;
  lastSeen: string;
  /** Open watch streams from this instance (0 or 1 in practice). */
  watching: number;
}

export interface ClientReport {
  service: string;
  instance: string;
  revision: string | undefined;
  status: 'applied' | 'rejected';
  error: string | undefined;
}

/** Where client records are shared among replicas (etcd), so any replica lists every client. */
export interface ClientDirectory {
  /** Shares this replica's latest view of one client; never throws, never waits. */
  save(record: ClientRecord): void;
  /** Every replica's records; rejects when the directory cannot be reached. */
  list(): Promise<ClientRecord[]>;
}

/**
 * Every client seen, by instance id. Bounded: past `limit` entries the one seen longest ago and not
 * watching is forgotten, so a flood of made-up instance ids cannot grow memory without end.
 */
export class ClientRegistry {
  readonly #byInstance = new Map<string, ClientRecord>();
  readonly #limit: number;
  readonly #directory: ClientDirectory | undefined;

  constructor(limit = 10_000, directory?: ClientDirectory) {
    this.#limit = limit;
    this.#directory = directory;
  }

  report(report: ClientReport): ClientRecord {
    const record = this.#touch(report.service, report.instance);
    if (report.status === 'applied') {
      record.revision = report.revision;
      record.rejectedRevision = undefined;
      record.lastError = undefined;
    } else {
      record.rejectedRevision = report.revision;
      record.lastError = report.error;
    }
    this.#directory?.save(record);
    return record;
  }

  /** A watch stream opened; the returned function is called when it closes. */
  watching(service: string, instance: string): () => void {
    const record = this.#touch(service, instance);
    record.watching++;
    this.#directory?.save(record);
    return () => {
      record.watching--;
      record.lastSeen = new Date().toISOString();
      this.#directory?.save(record);
    };
  }

  /**
   * Every client: with a directory, every replica's (a record this replica holds wins when it is
   * newer); without one, or while it cannot be reached, this replica's own.
   */
  async listAll(): Promise<ClientRecord[]> {
    if (!this.#directory) return this.list();
    let shared: ClientRecord[];
    try {
      shared = await this.#directory.list();
    } catch {
      return this.list();
    }
    const merged = new Map(shared.map((record) => [record.instance, record]));
    for (const record of this.#byInstance.values()) {
      const other = merged.get(record.instance);
      if (!other || other.lastSeen <= record.lastSeen) merged.set(record.instance, record);
    }
    return sortRecords([...merged.values()]);
  }

  list(): ClientRecord[] {
    return sortRecords([...this.#byInstance.values()]);
  }

  #touch(service: string, instance: string): ClientRecord {
    let record = this.#byInstance.get(instance);
    if (!record) {
      if (this.#byInstance.size >= this.#limit) this.#evictOne();
      record = { service, instance, revision: undefined, rejectedRevision: undefined, lastError: undefined, lastSeen: '', watching: 0 };
      this.#byInstance.set(instance, record);
    }
    record.service = service;
    record.lastSeen = new Date().toISOString();
    return record;
  }

  #evictOne(): void {
    let oldest: ClientRecord | undefined;
    for (const record of this.#byInstance.values()) {
      if (record.watching === 0 && (!oldest || record.lastSeen < oldest.lastSeen)) oldest = record;
    }
    if (oldest) this.#byInstance.delete(oldest.instance);
  }
}

function sortRecords(records: ClientRecord[]): ClientRecord[] {
  return records.sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
}
