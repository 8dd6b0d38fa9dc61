import { readFile } from 'node:fs/promises';
import { configError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { parsePolicyText } from '../policy/load.ts';
import { FileRevisionStore } from './file-store.ts';
import { buildRevision } from './revision.ts';
import type { DocumentValidator } from './revision.ts';
import type { RevisionStore } from './store.ts';
import { parseStoreUrl } from './store-url.ts';

export interface StoreChoice {
  /** The policy file: the store itself, or with an etcd `storeUrl` the seed of an empty store. */
  readonly policyFile?: string | undefined;
  /** `file:<path>` or `etcd://host:2379[,host:2379…]/prefix`. */
  readonly storeUrl?: string | undefined;
  readonly historyLimit?: number | undefined;
  /** Seconds a replica's client records outlive it in etcd (default 10). */
  readonly clientLeaseTtl?: number | undefined;
}

/** Opens the store a control plane was configured with: an etcd store, else the policy file. */
export async function openStore(choice: StoreChoice, logger: Logger, validate: DocumentValidator, onRefusedEdit: () => void): Promise<RevisionStore> {
  const { historyLimit } = choice;
  if (historyLimit !== undefined && !(Number.isInteger(historyLimit) && historyLimit >= 1)) {
    throw configError(`startControlPlane option historyLimit: expected a whole number >= 1 (the revision in force is kept in it), got ${historyLimit}`);
  }
  const location = choice.storeUrl === undefined ? undefined : parseStoreUrl(choice.storeUrl, 'store');
  if (location?.kind === 'etcd') {
    const seed = choice.policyFile === undefined ? undefined : await seedRevision(choice.policyFile, validate);
    const { EtcdRevisionStore } = await import('./etcd-store.ts');
    return EtcdRevisionStore.open({ ...location, logger, validate, seed, historyLimit: choice.historyLimit, clientLeaseTtl: choice.clientLeaseTtl });
  }
  const path = choice.policyFile ?? location?.path;
  if (path === undefined) throw configError('startControlPlane: set policyFile (the policy file that is the store), storeUrl, or store');
  return FileRevisionStore.open({ path, logger, validate, historyLimit: choice.historyLimit, onRefusedEdit });
}

async function seedRevision(file: string, validate: DocumentValidator) {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw configError(`cannot read policy file ${file}: ${err.code ?? err.message}`, err);
  });
  return buildRevision(parsePolicyText(text, file), file, 'file', validate);
}
