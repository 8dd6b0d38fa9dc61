import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../atomic-write.ts';

/** The last-known-good document from one control plane, as kept in MESHFETCH_CACHE_DIR. */
export interface CachedPolicy {
  readonly revision: string;
  readonly document: unknown;
}

/**
 * One file per control plane (its set of replica origins, in any order), so meshes that share a
 * cache directory but not a control plane do not mix.
 */
export function cacheFile(dir: string, controlPlanes: readonly URL[]): string {
  const key = [...new Set(controlPlanes.map((url) => url.origin))].sort().join(',');
  return join(dir, `policy-${createHash('sha256').update(key).digest('hex').slice(0, 12)}.json`);
}

/** The cached document, or undefined when there is none or it cannot be read (the caller validates it). */
export function readCachedPolicy(file: string): CachedPolicy | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<CachedPolicy> | null;
    return typeof parsed?.revision === 'string' && parsed.document !== undefined ? { revision: parsed.revision, document: parsed.document } : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the cache atomically (temporary file, flush, rename), readable only by this user. */
export async function writeCachedPolicy(file: string, dir: string, policy: CachedPolicy): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomically(file, JSON.stringify(policy), { mode: 0o600 });
}
